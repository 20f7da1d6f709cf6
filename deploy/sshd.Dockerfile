# The demo SSH host of compose.yaml: OpenSSH with the demo host key, letting in only the demo
# gateway key as `deploy`. Demo keys only (deploy/demo/): never use them for a real host.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends openssh-server \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /run/sshd \
 && useradd --create-home --shell /bin/bash deploy
COPY deploy/demo/sshd_host_ed25519_key /etc/ssh/demo_host_ed25519_key
COPY deploy/demo/authorized_keys /home/deploy/.ssh/authorized_keys
RUN chmod 600 /etc/ssh/demo_host_ed25519_key \
 && chown -R deploy:deploy /home/deploy/.ssh && chmod 700 /home/deploy/.ssh
EXPOSE 22
CMD ["/usr/sbin/sshd", "-D", "-e", "-o", "HostKey=/etc/ssh/demo_host_ed25519_key", \
     "-o", "PasswordAuthentication=no", "-o", "Subsystem=sftp internal-sftp"]

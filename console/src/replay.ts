// An SSH terminal played in the page with asciinema-player, loaded only when asked for (it is
// most of the console's script), from the gateway itself.
//
// A command run without a terminal (`ssh host 'cmd'`, no pty) writes bare line feeds: a
// terminal would not return to the first column on them, so for those casts the player is
// given each line feed as CR LF. The file itself, sealed evidence, is never changed.

import type { Cast } from "./sessions";

function forTerminal(cast: string): string {
  const lines = cast.split("\n").filter((l) => l.trim() !== "");
  if (lines.length === 0) return cast;
  const header = JSON.parse(lines[0]) as { width?: number; height?: number };
  header.width = header.width || 100;
  header.height = header.height || 24;
  const events = lines.slice(1).map((line) => {
    const event = JSON.parse(line) as [number, string, string];
    if (event[1] === "o") event[2] = event[2].replace(/\r?\n/g, "\r\n");
    return JSON.stringify(event);
  });
  return [JSON.stringify(header), ...events].join("\n") + "\n";
}

export async function replay(stage: HTMLElement, session: string, cast: Cast & { term?: string | null }) {
  const url = `/v1/sessions/${encodeURIComponent(session)}/casts/${encodeURIComponent(cast.file)}`;
  const [player, , text] = await Promise.all([
    import("asciinema-player"),
    import("asciinema-player/dist/bundle/asciinema-player.css"),
    fetch(url, { credentials: "same-origin" }).then((r) => {
      if (!r.ok) throw new Error(`HTTP ${r.status} for the recording`);
      return r.text();
    }),
  ]);
  const data = cast.term ? text : forTerminal(text);
  player.create({ data }, stage, { autoPlay: true, idleTimeLimit: 1, fit: "width", terminalFontSize: "small" });
}

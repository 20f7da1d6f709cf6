//! [`super::Db`] over tokio-postgres, called as a blocking connection.
//!
//! Every PostgreSQL connection of the process is driven on one runtime thread of the store's
//! own ([`driver`]); a call sends its request to the connection and waits for the answer with
//! futures' executor, which parks the calling thread and needs no runtime. So the store's SQL
//! runs from the ingest thread, a blocking task or the CLI alike, as rusqlite's does, and never
//! from inside the gateway's own runtime's scheduling. Statements are prepared once per
//! connection and kept by their text.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::sync::OnceLock;

use bytes::BytesMut;
use futures_executor::block_on;
use futures_util::StreamExt;
use tokio_postgres::types::{IsNull, ToSql, Type};
use tokio_postgres::{Client, NoTls, Statement};

use super::placeholders::to_dollars;
use super::{Cell, DbError, Params, Row, Value};

/// The runtime that drives every PostgreSQL connection's socket, on a thread of its own.
pub(crate) fn driver() -> Result<&'static tokio::runtime::Handle, DbError> {
    static DRIVER: OnceLock<Result<tokio::runtime::Handle, String>> = OnceLock::new();
    DRIVER
        .get_or_init(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            let handle = runtime.handle().clone();
            std::thread::Builder::new()
                .name("gatehouse-store-pg".into())
                .spawn(move || runtime.block_on(std::future::pending::<()>()))
                .map_err(|e| e.to_string())?;
            Ok(handle)
        })
        .as_ref()
        .map_err(|e| DbError::Unavailable(format!("the PostgreSQL driver thread: {e}")))
}

/// Connects on the driver (TLS as the URL's `sslmode` says, see [`super::tls`]); the
/// connection's socket is served there until it closes.
pub(crate) fn connect(url: &str) -> Result<(Client, tokio::task::JoinHandle<()>), DbError> {
    let driver = driver()?;
    let target = super::tls::target(url)?;
    let connecting = driver.spawn(async move {
        match target.tls {
            None => {
                let (client, connection) = tokio_postgres::connect(&target.url, NoTls).await?;
                Ok((client, tokio::spawn(serve(connection))))
            }
            Some(tls) => {
                let (client, connection) = tokio_postgres::connect(&target.url, tls).await?;
                Ok((client, tokio::spawn(serve(connection))))
            }
        }
    });
    block_on(connecting)
        .map_err(|e| DbError::Unavailable(format!("connecting to PostgreSQL: {e}")))?
        .map_err(DbError::Postgres)
}

/// Listens on `channel` of the PostgreSQL server at `url` for as long as the process runs:
/// `on_event` gets each notification's payload. A dropped connection is made again after a
/// second (notifications sent meanwhile are lost: callers also poll).
pub fn listen(
    url: &str,
    channel: &str,
    on_event: impl Fn(&str) + Send + Sync + 'static,
) -> Result<(), DbError> {
    let driver = driver()?;
    let (url, channel) = (url.to_owned(), channel.to_owned());
    driver.spawn(async move {
        loop {
            if let Err(e) = listen_once(&url, &channel, &on_event).await {
                tracing::warn!(error = %describe(&e), "store notifications interrupted; listening again in 1s");
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    });
    Ok(())
}

/// One connection's worth of listening: until it fails.
async fn listen_once(
    url: &str,
    channel: &str,
    on_event: &(impl Fn(&str) + Send + Sync),
) -> Result<(), tokio_postgres::Error> {
    let target = match super::tls::target(url) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "store notifications: bad store URL");
            return Ok(());
        }
    };
    match target.tls {
        None => {
            let (client, connection) = tokio_postgres::connect(&target.url, NoTls).await?;
            listen_on(client, connection, channel, on_event).await
        }
        Some(tls) => {
            let (client, connection) = tokio_postgres::connect(&target.url, tls).await?;
            listen_on(client, connection, channel, on_event).await
        }
    }
}

/// Sends `LISTEN channel` and hands each notification to `on_event`, driving the socket.
async fn listen_on<S, T>(
    client: Client,
    mut connection: tokio_postgres::Connection<S, T>,
    channel: &str,
    on_event: &(impl Fn(&str) + Send + Sync),
) -> Result<(), tokio_postgres::Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    // The socket is driven here, by reading the connection's messages (notifications among
    // them), while the LISTEN is sent.
    let listen = format!("LISTEN {channel}");
    let listening = client.batch_execute(&listen);
    tokio::pin!(listening);
    let mut listened = false;
    loop {
        tokio::select! {
            sent = &mut listening, if !listened => {
                sent?;
                listened = true;
            }
            message = std::future::poll_fn(|cx| connection.poll_message(cx)) => match message {
                Some(Ok(tokio_postgres::AsyncMessage::Notification(n))) => on_event(n.payload()),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => return Ok(()),
            },
        }
    }
}

/// Serves a connection's socket until it closes.
async fn serve<S, T>(connection: tokio_postgres::Connection<S, T>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if let Err(e) = connection.await {
        tracing::debug!(error = %e, "store connection to PostgreSQL ended");
    }
}

/// A PostgreSQL connection and its prepared statements.
pub(super) struct PgConn {
    client: Client,
    served: tokio::task::JoinHandle<()>,
    statements: HashMap<String, Statement>,
}

impl Drop for PgConn {
    fn drop(&mut self) {
        self.served.abort();
    }
}

impl PgConn {
    pub(super) fn connect(url: &str) -> Result<Self, DbError> {
        let (client, served) = connect(url)?;
        Ok(Self {
            client,
            served,
            statements: HashMap::new(),
        })
    }

    fn statement(&mut self, sql: &str) -> Result<Statement, DbError> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let prepared = block_on(self.client.prepare(&to_dollars(sql)))?;
        self.statements.insert(sql.to_owned(), prepared.clone());
        Ok(prepared)
    }

    pub(super) fn execute(&mut self, sql: &str, params: Params<'_>) -> Result<usize, DbError> {
        let stmt = self.statement(sql)?;
        let values: Vec<Value<'_>> = params.iter().map(|p| p.to_value()).collect();
        let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v as _).collect();
        let n = block_on(self.client.execute(&stmt, &refs))?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// Sends `rows` into `table` with `COPY ... FROM STDIN` (text format): one statement and
    /// one stream for the lot, the server's cheapest way in.
    pub(super) fn copy_rows(
        &mut self,
        table: &str,
        columns: &[&str],
        rows: &[Vec<super::Param<'_>>],
    ) -> Result<(), DbError> {
        use futures_util::SinkExt;
        let mut data = Vec::with_capacity(rows.len() * 256);
        for row in rows {
            for (i, cell) in row.iter().enumerate() {
                if i > 0 {
                    data.push(b'\t');
                }
                copy_text(cell, &mut data);
            }
            data.push(b'\n');
        }
        let sql = format!("COPY {table} ({}) FROM STDIN", columns.join(", "));
        block_on(async {
            let sink = self.client.copy_in::<_, bytes::Bytes>(sql.as_str()).await?;
            futures_util::pin_mut!(sink);
            sink.send(bytes::Bytes::from(data)).await?;
            sink.finish().await
        })?;
        Ok(())
    }

    pub(super) fn batch(&mut self, sql: &str) -> Result<(), DbError> {
        Ok(block_on(self.client.batch_execute(sql))?)
    }

    pub(super) fn query_each(
        &mut self,
        sql: &str,
        params: Params<'_>,
        each: &mut dyn FnMut(&Row<'_>) -> Result<(), DbError>,
    ) -> Result<(), DbError> {
        let stmt = self.statement(sql)?;
        let values: Vec<Value<'_>> = params.iter().map(|p| p.to_value()).collect();
        let rows = block_on(self.client.query_raw(&stmt, values.iter()))?;
        // Rows arrive as the server sends them.
        let mut rows = Box::pin(rows);
        while let Some(row) = block_on(rows.next()) {
            each(&Row::Postgres(&row?))?;
        }
        Ok(())
    }
}

/// A cell in COPY's text format: `\N` for NULL; backslash, tab, newline and carriage return
/// escaped.
fn copy_text(cell: &super::Param<'_>, out: &mut Vec<u8>) {
    match cell {
        super::Param::Null => out.extend_from_slice(b"\\N"),
        super::Param::Int(n) => out.extend_from_slice(n.to_string().as_bytes()),
        super::Param::Text(t) => {
            for b in t.bytes() {
                match b {
                    b'\\' => out.extend_from_slice(b"\\\\"),
                    b'\t' => out.extend_from_slice(b"\\t"),
                    b'\n' => out.extend_from_slice(b"\\n"),
                    b'\r' => out.extend_from_slice(b"\\r"),
                    _ => out.push(b),
                }
            }
        }
    }
}

/// What the server said (its message and SQLSTATE), or what failed on the way.
pub(super) fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        );
    }
    match e.source() {
        Some(source) => format!("{e}: {source}"),
        None => e.to_string(),
    }
}

/// Whether an error means the connection is gone (closed, the server shutting down or
/// unreachable), so the next call needs a new one.
pub(super) fn connection_lost(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code().map(|c| c.code()) {
        Some(code) => {
            // Connection exceptions, and the server shutting down or restarting.
            code.starts_with("08") || code.starts_with("57P")
        }
        // Not an error the server sent: the socket or the protocol failed.
        None => e.as_db_error().is_none() && e.source().is_some(),
    }
}

impl ToSql for Value<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        match *self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(n) => match *ty {
                Type::INT8 => n.to_sql(ty, out),
                Type::INT4 => i32::try_from(n)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(n)?.to_sql(ty, out),
                Type::BOOL => (n != 0).to_sql(ty, out),
                Type::FLOAT8 => (n as f64).to_sql(ty, out),
                _ => Err(format!("an integer cannot be sent as {ty}").into()),
            },
            Value::Text(t) => t.to_sql(ty, out),
        }
    }

    fn accepts(_ty: &Type) -> bool {
        // Checked per value in `to_sql`, which knows whether it holds an integer or text.
        true
    }

    tokio_postgres::types::to_sql_checked!();
}

pub(super) fn cell(row: &tokio_postgres::Row, index: usize) -> Result<Cell<'_>, DbError> {
    let Some(column) = row.columns().get(index) else {
        return Err(DbError::Type {
            index,
            what: "no such column".into(),
        });
    };
    let read = |e: tokio_postgres::Error| DbError::Type {
        index,
        what: e.to_string(),
    };
    let cell = match *column.type_() {
        Type::INT8 => row
            .try_get::<_, Option<i64>>(index)
            .map_err(read)?
            .map(Cell::Int),
        Type::INT4 => row
            .try_get::<_, Option<i32>>(index)
            .map_err(read)?
            .map(|n| Cell::Int(n.into())),
        Type::INT2 => row
            .try_get::<_, Option<i16>>(index)
            .map_err(read)?
            .map(|n| Cell::Int(n.into())),
        Type::BOOL => row
            .try_get::<_, Option<bool>>(index)
            .map_err(read)?
            .map(|b| Cell::Int(b.into())),
        Type::FLOAT8 => row
            .try_get::<_, Option<f64>>(index)
            .map_err(read)?
            .map(Cell::Real),
        Type::FLOAT4 => row
            .try_get::<_, Option<f32>>(index)
            .map_err(read)?
            .map(|x| Cell::Real(x.into())),
        _ => row
            .try_get::<_, Option<&str>>(index)
            .map_err(read)?
            .map(Cell::Text),
    };
    Ok(cell.unwrap_or(Cell::Null))
}

#[cfg(test)]
mod tests {
    use super::super::Param;
    use super::copy_text;

    #[test]
    fn copy_text_escapes_what_the_format_reads_specially() {
        let mut out = Vec::new();
        for cell in [
            Param::Null,
            Param::Int(-42),
            Param::Text("a\\b\tc\nd\re \\N".into()),
        ] {
            copy_text(&cell, &mut out);
            out.push(b'|');
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\\N|-42|a\\\\b\\tc\\nd\\re \\\\N|"
        );
    }
}

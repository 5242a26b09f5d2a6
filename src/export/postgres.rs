//! `export --postgres URL`: the marts loaded into PostgreSQL for Metabase (and Looker).
//!
//! Each table is loaded in one transaction: `<table>__load` is created from the contract, filled by
//! a text `COPY ... FROM STDIN`, given its primary key, then the old table is dropped and the load
//! table renamed over it. Until the commit nobody sees the load table, and a failure anywhere (a
//! value refused, a reader's view depending on the old table, a dropped connection) rolls back to
//! the previous table untouched. Tables are independent: one failing does not stop the others,
//! and the command fails at the end naming each.
//!
//! TLS: this build has none. `sslmode=disable` and `sslmode=prefer` (the default) connect in plain
//! text; `sslmode=require` is refused up front. Reach a remote server over a private network, an
//! SSH tunnel or a TLS-terminating proxy (e.g. PgBouncer or Cloud SQL Auth Proxy on localhost).
//!
//! The URL carries a password, so it is never logged or put in an error: only user, hosts, ports
//! and database are (see [`describe`]).

use std::pin::pin;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::{Client, Config, NoTls};

use super::{Cell, Exported, cell, contract_columns};
use crate::contract::{ColumnType, Contract};
use crate::error::{Error, Result};
use crate::storage::Storage;

/// Suffix of the table a load fills before the swap.
pub const LOAD_SUFFIX: &str = "__load";
/// PostgreSQL's identifier limit (NAMEDATALEN - 1): longer names are silently truncated.
const MAX_IDENT: usize = 63;

/// The PostgreSQL type a contract type is loaded as: the mapping `ddl --dialect postgres` prints,
/// so an export and the DDL agree.
pub fn pg_type(ty: ColumnType) -> &'static str {
    crate::bi::types::sql_type(crate::bi::types::Dialect::Postgres, ty)
}

/// Loads every table into `schema` (created when missing); returns rows per table.
pub async fn export(storage: &Storage, tables: &[Contract], url: &str, schema: &str) -> Result<Vec<Exported>> {
    let config = parse(url)?;
    let target = describe(&config);
    let (mut client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| Error::config(format!("cannot connect to PostgreSQL {target}: {}", db_error(&e))))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "PostgreSQL connection ended with an error.");
        }
    });
    tracing::info!(target = %target, schema, tables = tables.len(), "Exporting to PostgreSQL.");
    client
        .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {}", ident(schema)))
        .await
        .map_err(|e| Error::config(format!("PostgreSQL {target}: cannot create schema {schema}: {}", db_error(&e))))?;
    let ctx = super::session(storage, tables).await?;
    let mut done = Vec::new();
    let mut failed = Vec::new();
    for table in tables {
        let started = std::time::Instant::now();
        match load(&mut client, &ctx, schema, table).await {
            Ok(rows) => {
                let elapsed_ms = started.elapsed().as_millis() as u64;
                tracing::info!(table = %table.name, rows, elapsed_ms, "Table loaded and swapped.");
                done.push(Exported { table: table.name.clone(), rows });
            }
            Err(message) => {
                tracing::error!(table = %table.name, error = %message, "Table not loaded; the previous one stays.");
                failed.push(format!("table {schema}.{}: {message}", table.name));
            }
        }
    }
    if failed.is_empty() { Ok(done) } else { Err(Error::Export(failed)) }
}

/// Parses the URL (or key=value string); refuses what this build cannot honour.
fn parse(url: &str) -> Result<Config> {
    // tokio-postgres's parse errors name the option, never its value.
    let config: Config = url.parse().map_err(|e| Error::config(format!("the PostgreSQL URL does not parse: {e}")))?;
    if config.get_ssl_mode() == SslMode::Require {
        return Err(Error::config(
            "the PostgreSQL URL asks for sslmode=require, but this build has no TLS; use sslmode=disable \
             over a private network, an SSH tunnel or a local TLS-terminating proxy",
        ));
    }
    Ok(config)
}

/// `user@host:port/db`: what logs and errors may say about a connection (never the password).
pub fn describe(config: &Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let port = config.get_ports().get(i).or(config.get_ports().first()).copied().unwrap_or(5432);
            match h {
                Host::Tcp(name) => format!("{name}:{port}"),
                Host::Unix(dir) => format!("{}:{port}", dir.display()),
            }
        })
        .collect();
    format!(
        "{}@{}/{}",
        config.get_user().unwrap_or("?"),
        hosts.join(","),
        config.get_dbname().or(config.get_user()).unwrap_or("?")
    )
}

/// One table's transaction: create the load table, COPY, key, swap, commit.
async fn load(
    client: &mut Client,
    ctx: &datafusion::prelude::SessionContext,
    schema: &str,
    table: &Contract,
) -> std::result::Result<u64, String> {
    let name = &table.name;
    let key_name = format!("{name}{LOAD_SUFFIX}_pkey");
    if key_name.len() > MAX_IDENT {
        return Err(format!("the name is too long for PostgreSQL (over {MAX_IDENT} bytes with {LOAD_SUFFIX}_pkey)"));
    }
    let load = format!("{}.{}", ident(schema), ident(&format!("{name}{LOAD_SUFFIX}")));
    let target = format!("{}.{}", ident(schema), ident(name));
    let pg = |step: &str| {
        let step = step.to_string();
        move |e: tokio_postgres::Error| format!("{step}: {}", db_error(&e))
    };

    let tx = client.transaction().await.map_err(pg("begin"))?;
    // A reader holding the old table (a long Metabase query) makes the swap wait; not forever.
    tx.batch_execute(&format!(
        "SET LOCAL lock_timeout = '120s';\nDROP TABLE IF EXISTS {load};\n{}",
        create_sql(&load, table)
    ))
    .await
    .map_err(pg("create the load table"))?;

    let columns = table.columns.iter().map(|c| ident(&c.name)).collect::<Vec<_>>().join(", ");
    let sink = tx.copy_in::<_, Bytes>(&format!("COPY {load} ({columns}) FROM STDIN")).await.map_err(pg("COPY"))?;
    let mut sink = pin!(sink);
    let df_err = |e: datafusion::error::DataFusionError| format!("reading the mart: {e}");
    let mut stream = ctx.table(name).await.map_err(df_err)?.execute_stream().await.map_err(df_err)?;
    let mut sent = 0u64;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(df_err)?;
        let arrays = contract_columns(table, &batch).map_err(|e| e.to_string())?;
        let mut buf = String::with_capacity(batch.num_rows() * 64);
        for row in 0..batch.num_rows() {
            for (i, (spec, array)) in table.columns.iter().zip(&arrays).enumerate() {
                if i > 0 {
                    buf.push('\t');
                }
                let value = cell(array.as_ref(), spec.column_type, row)
                    .and_then(|v| copy_text(&mut buf, &v))
                    .map_err(|m| format!("column {}, row {}: {m}", spec.name, sent + 1));
                value?;
            }
            buf.push('\n');
            sent += 1;
        }
        sink.send(Bytes::from(buf)).await.map_err(pg("COPY"))?;
    }
    let copied = sink.as_mut().finish().await.map_err(pg("COPY"))?;
    if copied != sent {
        return Err(format!("COPY reports {copied} rows, {sent} were sent"));
    }

    let mut swap = String::new();
    if !table.primary_key.is_empty() {
        let key = table.primary_key.iter().map(|k| ident(k)).collect::<Vec<_>>().join(", ");
        swap.push_str(&format!("ALTER TABLE {load} ADD CONSTRAINT {} PRIMARY KEY ({key});\n", ident(&key_name)));
    }
    swap.push_str(&format!("DROP TABLE IF EXISTS {target};\nALTER TABLE {load} RENAME TO {};\n", ident(name)));
    if !table.primary_key.is_empty() {
        swap.push_str(&format!(
            "ALTER TABLE {target} RENAME CONSTRAINT {} TO {};\n",
            ident(&key_name),
            ident(&format!("{name}_pkey"))
        ));
    }
    tx.batch_execute(&swap).await.map_err(pg("key and swap"))?;
    tx.commit().await.map_err(pg("commit"))?;
    Ok(copied)
}

/// `CREATE TABLE` with NOT NULL from the contract, and its descriptions as comments (Metabase
/// shows them beside the tables and fields).
pub fn create_sql(load: &str, table: &Contract) -> String {
    let columns = table
        .columns
        .iter()
        .map(|c| {
            let null = if c.nullable { "" } else { " NOT NULL" };
            format!("  {} {}{null}", ident(&c.name), pg_type(c.column_type))
        })
        .collect::<Vec<_>>()
        .join(",\n");
    let mut sql = format!("CREATE TABLE {load} (\n{columns}\n);\n");
    sql.push_str(&format!("COMMENT ON TABLE {load} IS {};\n", literal(&table.grain)));
    for c in &table.columns {
        sql.push_str(&format!("COMMENT ON COLUMN {load}.{} IS {};\n", ident(&c.name), literal(&c.description)));
    }
    sql
}

/// Appends one value in COPY's text format (tab-separated, `\N` for NULL, backslash escapes).
fn copy_text(buf: &mut String, value: &Cell) -> std::result::Result<(), String> {
    match value {
        Cell::Null => buf.push_str("\\N"),
        Cell::Text(t) => escape_copy(buf, t)?,
        Cell::List(items) => {
            // An array literal `{"a",NULL}`, itself escaped for COPY.
            let mut lit = String::from("{");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    lit.push(',');
                }
                match item {
                    None => lit.push_str("NULL"),
                    Some(s) => {
                        lit.push('"');
                        for ch in s.chars() {
                            if ch == '"' || ch == '\\' {
                                lit.push('\\');
                            }
                            lit.push(ch);
                        }
                        lit.push('"');
                    }
                }
            }
            lit.push('}');
            escape_copy(buf, &lit)?;
        }
    }
    Ok(())
}

fn escape_copy(buf: &mut String, text: &str) -> std::result::Result<(), String> {
    for ch in text.chars() {
        match ch {
            '\0' => return Err("the text holds a NUL character, which PostgreSQL text cannot store".into()),
            '\\' => buf.push_str("\\\\"),
            '\n' => buf.push_str("\\n"),
            '\r' => buf.push_str("\\r"),
            '\t' => buf.push_str("\\t"),
            c => buf.push(c),
        }
    }
    Ok(())
}

/// A quoted identifier.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A quoted string literal (standard_conforming_strings, on since PostgreSQL 9.1).
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A driver error for a message: the server's code, message and where, cut before any quoted
/// value (a COPY error quotes the refused value, which may be personal data).
fn db_error(e: &tokio_postgres::Error) -> String {
    let cut = |s: &str| s.split(": \"").next().unwrap_or_default().to_string();
    match e.as_db_error() {
        Some(db) => {
            let mut out = format!("{} ({})", cut(db.message()), db.code().code());
            if let Some(w) = db.where_() {
                out.push_str(&format!(" at {}", cut(w)));
            }
            if let Some(detail) = db.detail() {
                out.push_str(&format!("; {}", cut(detail)));
            }
            out
        }
        None => {
            let mut out = e.to_string();
            if let Some(source) = std::error::Error::source(e) {
                out.push_str(&format!(": {source}"));
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_escapes_and_refuses_nul() {
        let mut buf = String::new();
        copy_text(&mut buf, &Cell::Text("a\tb\\c\nd".into())).unwrap();
        assert_eq!(buf, "a\\tb\\\\c\\nd");
        buf.clear();
        copy_text(&mut buf, &Cell::List(vec![Some("x\"y".into()), None, Some("a,b".into())])).unwrap();
        assert_eq!(buf, r#"{"x\\"y",NULL,"a,b"}"#);
        buf.clear();
        copy_text(&mut buf, &Cell::Null).unwrap();
        assert_eq!(buf, "\\N");
        assert!(copy_text(&mut buf, &Cell::Text("a\0".into())).unwrap_err().contains("NUL"));
    }

    #[test]
    fn urls_are_described_without_their_password() {
        let c = parse("postgres://metabase:hunter2-secret@db.internal:6432/bi?sslmode=disable").unwrap();
        let d = describe(&c);
        assert_eq!(d, "metabase@db.internal:6432/bi");
        let e = parse("postgres://u:hunter2-secret@h/db?sslmode=require").unwrap_err().to_string();
        assert!(e.contains("sslmode=require") && !e.contains("hunter2"), "{e}");
        let e = parse("postgres://u:hunter2-secret@h/db?sslmode=bogus").unwrap_err().to_string();
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn create_sql_maps_contract_types() {
        let c = crate::contract::model("marts", "fct_orders").unwrap();
        let sql = create_sql("\"marts\".\"fct_orders__load\"", &c);
        assert!(sql.contains("\"net_revenue\" numeric(18,4) NOT NULL"), "{sql}");
        assert!(sql.contains("COMMENT ON TABLE \"marts\".\"fct_orders__load\" IS '"), "{sql}");
    }
}

//! Output shared by the commands: events as an aligned table or CSV, and aligned rows, and
//! [`outln!`], the `println!` of every command.

use std::io::Write;

use serde_json::Value;

/// `println!` for command output. A closed pipe (`mlaudit query | head`) ends the process
/// quietly, as Unix tools do. SIGPIPE stays ignored (Rust's default) so that a connection
/// the server closes mid-request is an error the user reads, not a silent death.
macro_rules! outln {
    () => {
        $crate::output::out(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Writes to stdout; see [`outln!`].
pub(crate) fn out(args: std::fmt::Arguments<'_>) {
    if let Err(e) = std::io::stdout().lock().write_fmt(args) {
        exit_on_stdout_error(&e);
    }
}

/// Stdout for writers (CSV): its errors end the process as [`outln!`]'s do.
pub(crate) struct Stdout;

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        std::io::stdout()
            .lock()
            .write(buf)
            .or_else(|e| exit_on_stdout_error(&e))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stdout()
            .lock()
            .flush()
            .or_else(|e| exit_on_stdout_error(&e))
    }
}

/// Ends the process for a failed write to stdout: quietly (0) for a closed pipe, else with
/// the error.
pub(crate) fn exit_on_stdout_error(e: &std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("mlaudit: error: writing to stdout: {e}");
    std::process::exit(1);
}

/// `TYPE:ID[@VERSION]` of an event's `resource`, empty for none.
pub(crate) fn resource_text(r: &Value) -> String {
    if !r.is_object() {
        return String::new();
    }
    let mut t = format!("{}:{}", s(&r["type"]), s(&r["id"]));
    if let Some(v) = r["version"].as_str() {
        t.push('@');
        t.push_str(v);
    }
    t
}

/// The cells of one result in a table: seq, time, action, outcome, actor, resource.
pub(crate) fn event_cells(h: &Value) -> Vec<String> {
    let e = &h["event"];
    vec![
        h["seq"].to_string(),
        time_text(&e["time"]),
        s(&e["action"]),
        e["outcome"].as_str().unwrap_or("success").to_string(),
        s(&e["actor"]["id"]),
        resource_text(&e["resource"]),
    ]
}

/// The header of [`event_cells`].
pub(crate) const EVENT_HEADER: [&str; 6] =
    ["SEQ", "TIME", "ACTION", "OUTCOME", "ACTOR", "RESOURCE"];

/// seq, time, action, outcome, actor, resource: one aligned row per result.
pub(crate) fn print_table(hits: &[Value]) {
    let mut rows = vec![EVENT_HEADER.map(String::from).to_vec()];
    rows.extend(hits.iter().map(event_cells));
    print_aligned(&rows);
}

/// One CSV row per result, for spreadsheets and audit evidence.
pub(crate) fn print_csv(hits: &[Value]) -> anyhow::Result<()> {
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    let mut w = csv::Writer::from_writer(Stdout);
    w.write_record([
        "seq",
        "recorded_at",
        "time",
        "action",
        "outcome",
        "actor",
        "resource_type",
        "resource_id",
        "resource_version",
        "project",
        "environment",
        "leaf_hash",
        "reason",
        "tags",
        "related",
        "parameters",
    ])?;
    for h in hits {
        let e = &h["event"];
        // Lists joined with `;`, objects as compact JSON (RFC 8785 order is not needed
        // here: this is for people and spreadsheets; `--json` is the exact form).
        let tags: Vec<String> = e["resource"]["tags"]
            .as_array()
            .map(|a| a.iter().map(s).collect())
            .unwrap_or_default();
        let related: Vec<String> = e["related"]
            .as_array()
            .map(|a| a.iter().map(link_text).collect())
            .unwrap_or_default();
        let parameters = match &e["parameters"] {
            Value::Null => String::new(),
            v => v.to_string(),
        };
        w.write_record([
            h["seq"].to_string(),
            s(&h["recorded_at"]),
            s(&e["time"]),
            s(&e["action"]),
            e["outcome"].as_str().unwrap_or("success").to_string(),
            s(&e["actor"]["id"]),
            s(&e["resource"]["type"]),
            s(&e["resource"]["id"]),
            s(&e["resource"]["version"]),
            s(&e["context"]["project"]),
            s(&e["context"]["environment"]),
            s(&h["leaf_hash"]),
            s(&e["reason"]),
            tags.join(";"),
            related.join(";"),
            parameters,
        ])?;
    }
    w.flush()?;
    Ok(())
}

/// Rows of cells as aligned columns (two spaces apart), the first row a header.
pub(crate) fn print_aligned(rows: &[Vec<String>]) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; cols];
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        outln!("{}", line.join("  ").trim_end());
    }
}

pub(crate) fn s(v: &Value) -> String {
    v.as_str().unwrap_or("").to_string()
}

/// `--json` / `--csv`, shared by every command that prints a list: the default is an
/// aligned table with a header row.
#[derive(clap::Args, Debug, Default, Clone, Copy)]
pub(crate) struct FormatArgs {
    /// Print JSON (the server's answer, pretty-printed).
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// Print CSV (a header row, then one row per item).
    #[arg(long)]
    pub csv: bool,
}

/// Prints `rows` (the first one the header) as an aligned table or CSV, or `json` when
/// `--json` was given.
pub(crate) fn print_list(f: FormatArgs, rows: &[Vec<String>], json: &Value) -> anyhow::Result<()> {
    if f.json {
        outln!("{}", serde_json::to_string_pretty(json)?);
    } else if f.csv {
        let mut w = csv::Writer::from_writer(Stdout);
        for r in rows {
            w.write_record(r)?;
        }
        w.flush()?;
    } else {
        print_aligned(rows);
    }
    Ok(())
}

/// An RFC 3339 time from an answer as tables print every time: UTC at millisecond
/// precision, so that producer times (any precision, any offset) and recorded times
/// (nanoseconds) line up in one column. Anything else is printed as it is; CSV and JSON
/// keep the exact value.
pub(crate) fn time_text(v: &Value) -> String {
    let raw = s(v);
    match chrono::DateTime::parse_from_rfc3339(&raw) {
        Ok(t) => time_ms(Some(t.timestamp_millis())),
        Err(_) => raw,
    }
}

/// `" (TEXT)"`, or nothing when `text` is empty: no output line ends in an empty `()`.
pub(crate) fn in_parens(text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!(" ({text})")
    }
}

/// A time in milliseconds since the Unix epoch as RFC 3339 at millisecond precision, the
/// one precision every command prints; `-` for none.
pub(crate) fn time_ms(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| "-".into())
}

/// A `related[]` item as `TYPE:ID[@VERSION][:RELATION]`, the link syntax of the CLI.
pub(crate) fn link_text(l: &Value) -> String {
    let mut t = format!("{}:{}", s(&l["type"]), s(&l["id"]));
    if let Some(v) = l["version"].as_str() {
        t.push('@');
        t.push_str(v);
    }
    if let Some(r) = l["relation"].as_str() {
        t.push(':');
        t.push_str(r);
    }
    t
}

/// The one style of every progress display (stderr, on a terminal only): elapsed time, a
/// bar when the total is known, `done/total UNIT`, a rate without decimals and the time
/// left. `{per_sec}` printed rates like `1234.5678/s`.
pub(crate) fn progress_style(unit: &str, known_total: bool) -> indicatif::ProgressStyle {
    let template = if known_total {
        format!("{{spinner}} [{{elapsed_precise}}] {{wide_bar}} {{pos}}/{{len}} {unit} {{rate}}, {{eta}} left {{msg}}")
    } else {
        format!("{{spinner}} [{{elapsed_precise}}] {{pos}} {unit} {{rate}} {{msg}}")
    };
    indicatif::ProgressStyle::with_template(&template)
        .expect("a valid progress template")
        .with_key(
            "rate",
            |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.0}/s", s.per_sec());
            },
        )
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    /// A terminal that keeps what is written to it.
    #[derive(Debug, Default, Clone)]
    struct Screen(Arc<Mutex<String>>);

    impl indicatif::TermLike for Screen {
        fn width(&self) -> u16 {
            120
        }
        fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            self.write_str(s)
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            let mut t = self.0.lock().unwrap();
            t.push_str(s);
            t.push('\n');
            Ok(())
        }
        fn clear_line(&self) -> std::io::Result<()> {
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Issue 11.12: progress rates printed decimals (`1234.5678/s`) and no time left.
    #[test]
    fn progress_shows_a_whole_rate_and_the_time_left() {
        let screen = Screen::default();
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(1000),
            indicatif::ProgressDrawTarget::term_like(Box::new(screen.clone())),
        );
        bar.set_style(super::progress_style("events", true));
        for _ in 0..10 {
            std::thread::sleep(std::time::Duration::from_millis(5));
            bar.inc(37);
        }
        bar.tick();
        let all = screen.0.lock().unwrap().clone();
        // The last frame drawn.
        let shown = all
            .lines()
            .rfind(|l| l.contains("events"))
            .unwrap_or_default();
        assert!(shown.contains("370/1000 events"), "{shown}");
        assert!(shown.contains(" left"), "{shown}");
        let rate = shown
            .split_whitespace()
            .find(|w| w.contains("/s"))
            .unwrap_or_else(|| panic!("a rate: {shown}"));
        let number = rate.trim_end_matches(',').trim_end_matches("/s");
        assert!(
            number.parse::<u64>().is_ok(),
            "a whole rate: {rate} in {shown}"
        );
    }
}

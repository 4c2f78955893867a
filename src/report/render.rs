//! Renderers of one [`RiskReport`]: JSON (the model as is), Markdown (fits a pull-request
//! comment) and a self-contained HTML file (inline CSS and SVG, no script, no external asset).
//! Templates are minijinja, compiled into the binary; `.html` templates auto-escape.

use super::ReportError;
use super::charts;
use super::model::RiskReport;
use minijinja::{Environment, context};
use std::collections::BTreeMap;
use std::str::FromStr;

const MD_TEMPLATE: &str = include_str!("templates/report.md");
const HTML_TEMPLATE: &str = include_str!("templates/report.html");

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Format {
    /// `report.html`.
    Html,
    /// `report.md`.
    Markdown,
    /// `report.json`.
    Json,
}

impl Format {
    /// Every format, in output order.
    pub const ALL: [Format; 3] = [Format::Html, Format::Markdown, Format::Json];

    /// The file name the format is written to.
    pub fn file_name(self) -> &'static str {
        match self {
            Format::Html => "report.html",
            Format::Markdown => "report.md",
            Format::Json => "report.json",
        }
    }
}

/// A `--format` name that is none of the formats.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown format {0:?}: expected html, md or json (comma-separated)")]
pub struct UnknownFormat(pub String);

impl FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "html" => Ok(Format::Html),
            "md" | "markdown" => Ok(Format::Markdown),
            "json" => Ok(Format::Json),
            other => Err(UnknownFormat(other.to_string())),
        }
    }
}

/// Renders the report in one format.
pub fn render(report: &RiskReport, format: Format) -> Result<String, ReportError> {
    match format {
        Format::Json => json(report),
        Format::Markdown => template("report.md", report, None),
        Format::Html => {
            let charts = charts::draw(
                &report.timeline,
                report.worst_timeline.as_ref(),
                &report.explorer,
            )?;
            template("report.html", report, Some(&charts))
        }
    }
}

/// Renders several formats: file name → text.
pub fn render_all(
    report: &RiskReport,
    formats: &[Format],
) -> Result<BTreeMap<&'static str, String>, ReportError> {
    formats
        .iter()
        .map(|&f| Ok((f.file_name(), render(report, f)?)))
        .collect()
}

/// Renders `report` in `formats` into `dir`; returns the files written.
pub fn write_all(
    report: &RiskReport,
    dir: &std::path::Path,
    formats: &[Format],
) -> Result<Vec<std::path::PathBuf>, ReportError> {
    let mut written = Vec::new();
    for (name, text) in render_all(report, formats)? {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|source| ReportError::Write {
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    Ok(written)
}

/// The model as pretty JSON, with a final newline.
pub fn json(report: &RiskReport) -> Result<String, ReportError> {
    let mut s =
        serde_json::to_string_pretty(report).map_err(|e| ReportError::Json(e.to_string()))?;
    s.push('\n');
    Ok(s)
}

fn environment() -> Result<Environment<'static>, ReportError> {
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.add_filter("secs", secs);
    env.add_filter("prob", prob);
    env.add_filter("num", num);
    env.add_filter("cell", cell);
    for (name, text) in [("report.md", MD_TEMPLATE), ("report.html", HTML_TEMPLATE)] {
        env.add_template(name, text)
            .map_err(|e| ReportError::Template {
                name: name.to_string(),
                message: e.to_string(),
            })?;
    }
    Ok(env)
}

fn template(
    name: &str,
    report: &RiskReport,
    charts: Option<&charts::Charts>,
) -> Result<String, ReportError> {
    let err = |e: minijinja::Error| ReportError::Template {
        name: name.to_string(),
        message: format!("{e:#}"),
    };
    let env = environment()?;
    let tmpl = env.get_template(name).map_err(err)?;
    let mut out = tmpl
        .render(context! { r => report, charts => charts })
        .map_err(err)?;
    if !out.ends_with('\n') {
        out.push('\n');
    }
    Ok(out)
}

/// `12345` (ms) → `12.3 s`.
pub fn secs(ms: f64) -> String {
    let s = ms / 1e3;
    if s >= 100.0 {
        format!("{s:.0} s")
    } else {
        format!("{s:.1} s")
    }
}

/// A probability for people: `0`, `12.5%`, `3.4e-05 (1 in 29,000)`.
pub fn prob(p: f64) -> String {
    if p <= 0.0 {
        return "0".into();
    }
    if p >= 1.0 {
        return "100%".into();
    }
    if p >= 0.001 {
        return format!("{:.2}%", p * 100.0);
    }
    if p < 1e-9 {
        return "< 1e-9".into();
    }
    let one_in = super::risk::round_sig(1.0 / p, 2);
    format!("{p:.2e} (1 in {})", thousands(one_in as u64))
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A mean for people: at most one decimal.
pub fn num(x: f64) -> String {
    if (x - x.round()).abs() < 0.05 {
        format!("{:.0}", x.round())
    } else {
        format!("{x:.1}")
    }
}

/// Text safe inside a Markdown table cell.
pub fn cell(s: String) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_formatted_for_people() {
        assert_eq!(secs(12_345.0), "12.3 s");
        assert_eq!(secs(150_000.0), "150 s");
        assert_eq!(prob(0.0), "0");
        assert_eq!(prob(1.0), "100%");
        assert_eq!(prob(0.125), "12.50%");
        assert_eq!(prob(3.4e-5), "3.40e-5 (1 in 29,000)");
        assert_eq!(prob(4.8e-16), "< 1e-9");
        assert_eq!(num(2.0), "2");
        assert_eq!(num(2.26), "2.3");
        assert_eq!(cell("a|b".into()), "a\\|b");
    }

    #[test]
    fn formats_parse_and_reject_unknown_names() {
        assert_eq!("HTML".parse::<Format>(), Ok(Format::Html));
        assert_eq!("markdown".parse::<Format>(), Ok(Format::Markdown));
        let e = "pdf".parse::<Format>().unwrap_err().to_string();
        assert!(e.contains("html, md or json"), "{e}");
    }
}

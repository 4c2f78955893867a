//! SVG charts drawn with plotters' SVG backend (no system fonts: text is emitted as SVG
//! `<text>`, so the output is byte-identical everywhere): failure tolerance over the upgrade
//! with its steps marked, write availability, leadership, and the explorer's step × fault
//! heatmap.

use super::ReportError;
use super::model::{Explorer, Timeline};
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Chart width (px).
pub const WIDTH_PX: u32 = 1100;

const FONT: &str = "sans-serif";
const STEP_A: RGBColor = RGBColor(238, 242, 250);
const STEP_B: RGBColor = RGBColor(250, 250, 252);
const LEADER_STEP: RGBColor = RGBColor(255, 236, 214);
const BLUE_C: RGBColor = RGBColor(37, 99, 235);
const ORANGE_C: RGBColor = RGBColor(234, 120, 20);
const RED_C: RGBColor = RGBColor(200, 30, 30);
const GREEN_C: RGBColor = RGBColor(22, 150, 80);
const GREY_C: RGBColor = RGBColor(170, 170, 170);

fn chart_err<E: std::fmt::Display>(name: &'static str) -> impl Fn(E) -> ReportError {
    move |e| ReportError::Chart {
        name: name.to_string(),
        message: e.to_string(),
    }
}

fn secs(ms: u64) -> f64 {
    ms as f64 / 1e3
}

/// `typical seed 7`, `worst seed 3`, or `seed 1` (from the timeline's `why`).
fn seed_label(t: &Timeline) -> String {
    match t.why.split(':').next() {
        Some(kind @ ("typical" | "worst")) => format!("{kind} seed {}", t.seed),
        _ => format!("seed {}", t.seed),
    }
}

/// Every chart of a report, as SVG text.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Charts {
    /// Failure tolerance over time.
    pub tolerance: String,
    /// Write acknowledgements and failures over time.
    pub availability: String,
    /// Leader and running servers over time.
    pub leadership: String,
    /// Explorer heatmap.
    pub heatmap: String,
    /// Failure tolerance over time on the worst seed (empty when it is the typical one).
    pub worst_tolerance: String,
    /// Writes over time on the worst seed (empty when it is the typical one).
    pub worst_availability: String,
    /// The eval broker's backlog over time (empty when the plan declares no jobs).
    pub backlog: String,
    /// The same on the worst seed (empty when it is the typical one or there are no jobs).
    pub worst_backlog: String,
}

/// Draws every chart: the typical seed's (`t`), the worst seed's if there is one.
pub fn draw(t: &Timeline, worst: Option<&Timeline>, ex: &Explorer) -> Result<Charts, ReportError> {
    Ok(Charts {
        worst_tolerance: worst.map(tolerance).transpose()?.unwrap_or_default(),
        worst_availability: worst.map(availability).transpose()?.unwrap_or_default(),
        tolerance: tolerance(t)?,
        availability: availability(t)?,
        leadership: leadership(t)?,
        backlog: backlog_if_jobs(t)?,
        worst_backlog: worst.map(backlog_if_jobs).transpose()?.unwrap_or_default(),
        // A live run has no explorer: no heatmap (the report says why).
        heatmap: if t.live { String::new() } else { heatmap(ex)? },
    })
}

/// A time chart: seconds across, values up.
type TimeChart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The drawing area of one SVG chart.
type Canvas<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// A point on the canvas, in px from its top left corner.
type Px = (i32, i32);

/// The x axis's description on every time chart.
const X_DESC: &str = "seconds since the upgrade started";

/// An SVG chart `height` px high and `WIDTH_PX` wide: a white canvas `draw` draws on.
fn svg_chart(
    name: &'static str,
    height: u32,
    draw: impl FnOnce(&Canvas<'_>) -> Result<(), ReportError>,
) -> Result<String, ReportError> {
    let e = chart_err(name);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH_PX, height)).into_drawing_area();
        root.fill(&WHITE).map_err(&e)?;
        draw(&root)?;
        root.present().map_err(&e)?;
    }
    Ok(svg)
}

/// The axes of a time chart on `root`: its caption, 0..`x_max` seconds across, `y` up, and
/// a label area `y_area` px wide on the left.
fn time_axes<'a, 'b>(
    root: &'a Canvas<'b>,
    caption: &str,
    y_area: u32,
    x_max: f64,
    y: (f64, f64),
    name: &'static str,
) -> Result<TimeChart<'a, SVGBackend<'b>>, ReportError> {
    ChartBuilder::on(root)
        .caption(caption, (FONT, 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(y_area)
        .build_cartesian_2d(0.0..x_max, y.0..y.1)
        .map_err(chart_err(name))
}

/// The frame of a chart of one quantity over the upgrade: the axes (0..`y_max` up), the
/// step bands behind, and the mesh's horizontal lines with the axes' descriptions.
fn value_frame<'a, 'b>(
    root: &'a Canvas<'b>,
    t: &Timeline,
    caption: &str,
    (x_max, y_max): (f64, f64),
    y_desc: &str,
    name: &'static str,
) -> Result<TimeChart<'a, SVGBackend<'b>>, ReportError> {
    let mut chart = time_axes(root, caption, 50, x_max, (0.0, y_max), name)?;
    step_bands(&mut chart, t, (0.0, y_max), false)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_desc(X_DESC)
        .y_desc(y_desc)
        .draw()
        .map_err(chart_err(name))?;
    Ok(chart)
}

/// A legend entry's swatch: a box in `style`.
fn legend_box(style: impl Into<ShapeStyle>) -> impl Fn(Px) -> Rectangle<Px> {
    let style = style.into();
    move |(x, y)| Rectangle::new([(x, y - 5), (x + 20, y + 5)], style)
}

/// A legend entry's swatch: a line in `style`.
fn legend_line(style: impl Into<ShapeStyle>) -> impl Fn(Px) -> PathElement<Px> {
    let style = style.into();
    move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style)
}

/// The legend of a time chart's labelled series.
fn series_labels<'a, DB: DrawingBackend + 'a>(
    chart: &mut TimeChart<'a, DB>,
    position: SeriesLabelPosition,
    name: &'static str,
) -> Result<(), ReportError> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font((FONT, 12))
        .draw()
        .map_err(chart_err(name))
}

/// Step bands behind a time chart, with the step names along the top.
fn step_bands<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    t: &Timeline,
    y: (f64, f64),
    labels: bool,
) -> Result<(), ReportError> {
    let e = chart_err("steps");
    chart
        .draw_series(t.steps.iter().enumerate().map(|(i, s)| {
            let color = if s.leader_step {
                LEADER_STEP
            } else if i % 2 == 0 {
                STEP_A
            } else {
                STEP_B
            };
            Rectangle::new(
                [(secs(s.start_ms), y.0), (secs(s.end_ms), y.1)],
                color.filled(),
            )
        }))
        .map_err(&e)?;
    if labels {
        let style = TextStyle::from((FONT, 12).into_font()).pos(Pos::new(HPos::Left, VPos::Top));
        // Name only the steps wide enough for their name.
        let min_ms = t.duration_ms / 14;
        let wide = t
            .steps
            .iter()
            .filter(|s| s.end_ms.saturating_sub(s.start_ms) >= min_ms);
        chart
            .draw_series(wide.map(|s| {
                Text::new(
                    s.name.clone(),
                    (secs(s.start_ms) + secs(t.duration_ms) * 0.003, y.1),
                    style.clone(),
                )
            }))
            .map_err(&e)?;
    }
    attempt_marks(chart, t, y, labels)
}

/// Where each attempt of a live run begins: a dark line, named at the bottom of the chart
/// when `labels` (nothing is drawn for a timeline without marks: a rehearsal's).
fn attempt_marks<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    t: &Timeline,
    y: (f64, f64),
    labels: bool,
) -> Result<(), ReportError> {
    if t.marks.is_empty() {
        return Ok(());
    }
    let e = chart_err("attempts");
    let dark = RGBColor(60, 60, 70);
    chart
        .draw_series(t.marks.iter().map(|(ms, _)| {
            PathElement::new(
                vec![(secs(*ms), y.0), (secs(*ms), y.1)],
                dark.stroke_width(2),
            )
        }))
        .map_err(&e)?;
    if labels {
        let style = TextStyle::from((FONT, 12).into_font()).pos(Pos::new(HPos::Left, VPos::Bottom));
        chart
            .draw_series(t.marks.iter().map(|(ms, label)| {
                Text::new(
                    label.clone(),
                    (secs(*ms) + secs(t.duration_ms) * 0.003, y.0),
                    style.clone(),
                )
            }))
            .map_err(&e)?;
    }
    Ok(())
}

/// Failure tolerance (ground truth and as autopilot reported it) over the upgrade.
pub fn tolerance(t: &Timeline) -> Result<String, ReportError> {
    let e = chart_err("tolerance");
    svg_chart("tolerance", 340, |root| {
        let (lo, hi) = tolerance_range(t);
        let x_max = secs(t.duration_ms).max(1.0);
        let caption = if t.live {
            "Failure tolerance over the upgrade (live run)".to_string()
        } else {
            format!("Failure tolerance over the upgrade ({})", seed_label(t))
        };
        let mut chart = time_axes(root, &caption, 50, x_max, (lo, hi), "tolerance")?;
        step_bands(&mut chart, t, (lo, hi), true)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .y_labels(4 * (hi - lo) as usize)
            .y_label_formatter(&|v| {
                if (v - v.round()).abs() < 1e-6 {
                    format!("{v:.0}")
                } else {
                    String::new()
                }
            })
            .x_desc(X_DESC)
            .y_desc("servers that may still fail")
            .draw()
            .map_err(&e)?;
        tolerance_series(&mut chart, t, x_max)?;
        series_labels(&mut chart, SeriesLabelPosition::LowerRight, "tolerance")
    })
}

/// The tolerance chart's range: from below the lowest reported value (at most -1) to above
/// the highest (at least 1).
fn tolerance_range(t: &Timeline) -> (f64, f64) {
    let hi = t
        .samples
        .iter()
        .map(|s| s.tolerance)
        .chain(t.reported_tolerance.iter().filter_map(|r| r.1))
        .max()
        .unwrap_or(1)
        .max(1) as f64
        + 1.0;
    let lo = t
        .reported_tolerance
        .iter()
        .filter_map(|r| r.1)
        .min()
        .unwrap_or(0)
        .min(-1) as f64
        - 0.5;
    (lo, hi)
}

/// The zero line, the ground truth as a step line and autopilot's reports as dots.
fn tolerance_series<'a, DB: DrawingBackend + 'a>(
    chart: &mut TimeChart<'a, DB>,
    t: &Timeline,
    x_max: f64,
) -> Result<(), ReportError> {
    let e = chart_err("tolerance");
    chart
        .draw_series(LineSeries::new(
            [(0.0, 0.0), (x_max, 0.0)],
            RED_C.mix(0.5).stroke_width(1),
        ))
        .map_err(&e)?;
    let truth = step_points(
        t.samples.iter().map(|s| (s.t_ms, s.tolerance as f64)),
        x_max,
    );
    chart
        .draw_series(LineSeries::new(truth, BLUE_C.stroke_width(3)))
        .map_err(&e)?
        .label(if t.live {
            "autopilot's failure tolerance (held between observations)"
        } else {
            "ground truth (healthy voters − quorum)"
        })
        .legend(legend_line(BLUE_C.stroke_width(3)));
    let reported = t
        .reported_tolerance
        .iter()
        .filter_map(|(ms, v)| v.map(|v| (secs(*ms), v as f64)));
    chart
        .draw_series(reported.map(|p| Circle::new(p, 3, ORANGE_C.filled())))
        .map_err(&e)?
        .label(if t.live {
            "observations"
        } else {
            "reported by autopilot to the procedure"
        })
        .legend(|(x, y)| Circle::new((x + 10, y), 3, ORANGE_C.filled()));
    Ok(())
}

/// A step function through `(ms, value)` points: each value holds until the next point.
fn step_points(points: impl Iterator<Item = (u64, f64)>, x_max: f64) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = Vec::new();
    for (ms, v) in points {
        if let Some(&(_, prev)) = out.last() {
            out.push((secs(ms), prev));
        }
        out.push((secs(ms), v));
    }
    if let Some(&(_, last)) = out.last() {
        out.push((x_max, last));
    }
    out
}

/// Write acknowledgements per second, failed writes, and time without a leader.
pub fn availability(t: &Timeline) -> Result<String, ReportError> {
    svg_chart("availability", 300, |root| {
        let x_max = secs(t.duration_ms).max(1.0);
        let (rates, failed) = write_rates(t);
        let y_max = rates
            .iter()
            .map(|r| r.1)
            .chain(failed.iter().map(|f| f.2))
            .fold(1.0, f64::max)
            * 1.25;
        let caption = if t.live {
            "Write availability (live run: the write probe)".to_string()
        } else {
            format!("Write availability ({})", seed_label(t))
        };
        let range = (x_max, y_max);
        let y_desc = "writes per second";
        let mut chart = value_frame(root, t, &caption, range, y_desc, "availability")?;
        availability_series(&mut chart, t, x_max, y_max, rates, &failed)?;
        series_labels(&mut chart, SeriesLabelPosition::LowerRight, "availability")
    })
}

/// Acknowledged writes per second from each sample to the next, and the spans with failed
/// writes (start s, end s, failures per second).
#[allow(clippy::type_complexity)]
fn write_rates(t: &Timeline) -> (Vec<(u64, f64)>, Vec<(f64, f64, f64)>) {
    let mut rates = Vec::new();
    let mut failed = Vec::new();
    for w in t.samples.windows(2) {
        let dt = secs(w[1].t_ms.saturating_sub(w[0].t_ms));
        if dt <= 0.0 {
            continue;
        }
        let acked = w[1].acked.saturating_sub(w[0].acked) as f64;
        rates.push((w[0].t_ms, acked / dt));
        let f = w[1].failed.saturating_sub(w[0].failed);
        if f > 0 {
            failed.push((secs(w[0].t_ms), secs(w[1].t_ms), f as f64 / dt));
        }
    }
    (rates, failed)
}

/// Spans without a leader, the acknowledged-write area and the failed writes.
fn availability_series<'a, DB: DrawingBackend + 'a>(
    chart: &mut TimeChart<'a, DB>,
    t: &Timeline,
    x_max: f64,
    y_max: f64,
    rates: Vec<(u64, f64)>,
    failed: &[(f64, f64, f64)],
) -> Result<(), ReportError> {
    let e = chart_err("availability");
    let no_leader = t.samples.windows(2).filter(|w| w[0].leader.is_none());
    chart
        .draw_series(no_leader.map(|w| {
            Rectangle::new(
                [(secs(w[0].t_ms), 0.0), (secs(w[1].t_ms), y_max)],
                RED_C.mix(0.15).filled(),
            )
        }))
        .map_err(&e)?
        .label("no leader")
        .legend(legend_box(RED_C.mix(0.15).filled()));
    chart
        .draw_series(
            AreaSeries::new(
                step_points(rates.into_iter(), x_max),
                0.0,
                GREEN_C.mix(0.35),
            )
            .border_style(GREEN_C.stroke_width(2)),
        )
        .map_err(&e)?
        .label("writes acknowledged")
        .legend(legend_box(GREEN_C.mix(0.5).filled()));
    chart
        .draw_series(
            failed
                .iter()
                .map(|&(a, b, r)| Rectangle::new([(a, 0.0), (b, r)], RED_C.filled())),
        )
        .map_err(&e)?
        .label("writes failed")
        .legend(legend_box(RED_C.filled()));
    Ok(())
}

/// The backlog chart of a timeline that has one (the plan declares jobs), else nothing.
fn backlog_if_jobs(t: &Timeline) -> Result<String, ReportError> {
    if t.backlog.is_empty() {
        Ok(String::new())
    } else {
        backlog(t)
    }
}

/// The eval broker's backlog (ready + unacked + blocked evaluations) over the upgrade and the
/// cooldown after it, with the steps behind it and the procedure's end marked.
pub fn backlog(t: &Timeline) -> Result<String, ReportError> {
    let e = chart_err("backlog");
    svg_chart("backlog", 260, |root| {
        let last_ms = t.backlog.last().map_or(0, |p| p.0);
        let x_max = secs(t.duration_ms.max(last_ms)).max(1.0) * 1.02;
        let peak = t.backlog.iter().map(|p| p.1).max().unwrap_or(0);
        let y_max = (peak as f64).max(1.0) * 1.25;
        let caption = format!("Eval broker backlog ({})", seed_label(t));
        let range = (x_max, y_max);
        let mut chart = value_frame(root, t, &caption, range, "evaluations", "backlog")?;
        let points = step_points(t.backlog.iter().map(|&(ms, v)| (ms, v as f64)), x_max);
        chart
            .draw_series(
                AreaSeries::new(points, 0.0, BLUE_C.mix(0.3)).border_style(BLUE_C.stroke_width(2)),
            )
            .map_err(&e)?
            .label("ready + unacked + blocked")
            .legend(legend_box(BLUE_C.mix(0.5).filled()));
        let end = secs(t.duration_ms);
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(end, 0.0), (end, y_max)],
                GREY_C.stroke_width(2),
            )))
            .map_err(&e)?
            .label("end of the procedure")
            .legend(legend_line(GREY_C.stroke_width(2)));
        series_labels(&mut chart, SeriesLabelPosition::UpperRight, "backlog")
    })
}

/// One lane per server: running, stopped, and when it led.
pub fn leadership(t: &Timeline) -> Result<String, ReportError> {
    let e = chart_err("leadership");
    let n = t.servers.len().max(1);
    svg_chart("leadership", 90 + 32 * n as u32, |root| {
        let x_max = secs(t.duration_ms).max(1.0);
        let y_max = n as f64;
        let caption = "Leader and server processes";
        let mut chart = time_axes(root, caption, 70, x_max, (0.0, y_max), "leadership")?;
        step_bands(&mut chart, t, (0.0, y_max), false)?;
        let names = t.servers.clone();
        let label = move |v: &f64| {
            let i = v.floor();
            let centred = (v - i - 0.5).abs() < 1e-6;
            names
                .get(i as usize)
                .filter(|_| centred && i >= 0.0)
                .cloned()
                .unwrap_or_default()
        };
        chart
            .configure_mesh()
            .disable_mesh()
            .y_labels(2 * n + 1)
            .y_label_formatter(&label)
            .x_desc(X_DESC)
            .draw()
            .map_err(&e)?;
        leadership_series(&mut chart, t, y_max)?;
        series_labels(&mut chart, SeriesLabelPosition::UpperRight, "leadership")
    })
}

/// One bar per server between samples (led, running, stopped), the leader changes, and the
/// legend entries of the bar colours.
fn leadership_series<'a, DB: DrawingBackend + 'a>(
    chart: &mut TimeChart<'a, DB>,
    t: &Timeline,
    y_max: f64,
) -> Result<(), ReportError> {
    let e = chart_err("leadership");
    let lane = |name: &str| t.servers.iter().position(|s| s == name).unwrap_or(0) as f64;
    let mut bars = Vec::new();
    for w in t.samples.windows(2) {
        let (a, b) = (secs(w[0].t_ms), secs(w[1].t_ms));
        for name in &t.servers {
            let y = lane(name);
            let up = w[0].running.iter().any(|r| r == name);
            let led = w[0].leader.as_deref() == Some(name);
            let color = match (up, led) {
                (_, true) => BLUE_C.filled(),
                (true, false) => GREEN_C.mix(0.35).filled(),
                (false, false) => GREY_C.filled(),
            };
            bars.push(Rectangle::new([(a, y + 0.2), (b, y + 0.8)], color));
        }
    }
    chart.draw_series(bars).map_err(&e)?;
    let changes = t
        .samples
        .windows(2)
        .filter(|w| w[0].leader != w[1].leader)
        .map(|w| secs(w[1].t_ms));
    chart
        .draw_series(
            changes.map(|x| PathElement::new([(x, 0.0), (x, y_max)], RED_C.stroke_width(1))),
        )
        .map_err(&e)?
        .label("leader changed")
        .legend(legend_line(RED_C));
    chart
        .draw_series(std::iter::empty::<Rectangle<(f64, f64)>>())
        .map_err(&e)?
        .label("leader")
        .legend(legend_box(BLUE_C.filled()));
    chart
        .draw_series(std::iter::empty::<Rectangle<(f64, f64)>>())
        .map_err(&e)?
        .label("not running")
        .legend(legend_box(GREY_C.filled()));
    Ok(())
}

/// Colour of a heatmap cell: green all completed, yellow some halted safely, orange to red by
/// the share of runs that lost quorum, purple if any run lost allocations, blue if any run's
/// jobs never recovered, dark red if any run
/// was unsafe, grey if none ran.
fn cell_color(c: &super::model::HeatCell) -> RGBColor {
    if c.runs == 0 {
        return RGBColor(235, 235, 235);
    }
    if c.unsafe_runs > 0 {
        return RGBColor(120, 0, 20);
    }
    if c.lost_allocations > 0 {
        return RGBColor(130, 60, 160);
    }
    if c.stalled_workload > 0 {
        return RGBColor(90, 120, 200);
    }
    if c.beyond_tolerance > 0 {
        let share = c.beyond_tolerance as f64 / c.runs as f64;
        let g = (190.0 - 150.0 * share).round() as u8;
        return RGBColor(240, g, 60);
    }
    if c.halted > 0 {
        return RGBColor(250, 230, 140);
    }
    RGBColor(170, 225, 180)
}

/// Step × fault kind: outcomes of every single fault the explorer tried.
pub fn heatmap(ex: &Explorer) -> Result<String, ReportError> {
    let e = chart_err("heatmap");
    let (rows, cols) = (ex.fault_kinds.len().max(1), ex.steps.len().max(1));
    let (left, top, cell_h) = (110i32, 60i32, 26i32);
    let cell_w = ((WIDTH_PX as i32 - left - 20) / cols as i32).max(40);
    let height = (top + cell_h * rows as i32 + 40) as u32;
    svg_chart("heatmap", height, |root| {
        let title = TextStyle::from((FONT, 18).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
        root.draw(&Text::new(
            format!(
                "Explorer: outcomes of single faults by step ({} runs)",
                ex.runs
            ),
            (WIDTH_PX as i32 / 2, 8),
            title,
        ))
        .map_err(&e)?;
        let head =
            TextStyle::from((FONT, 12).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom));
        for (j, s) in ex.steps.iter().enumerate() {
            let x = left + cell_w * j as i32 + cell_w / 2;
            root.draw(&Text::new(s.clone(), (x, top - 6), head.clone()))
                .map_err(&e)?;
        }
        let grid = Grid {
            left,
            top,
            cell_w,
            cell_h,
        };
        heat_rows(root, ex, &grid)?;
        heat_legend(root, ex, left, top + cell_h * rows as i32 + 20)
    })
}

/// Where the heatmap's cells are (px).
struct Grid {
    left: i32,
    top: i32,
    cell_w: i32,
    cell_h: i32,
}

/// One row per fault kind: its name, then a cell per step with its bad/all runs.
fn heat_rows(root: &Canvas<'_>, ex: &Explorer, g: &Grid) -> Result<(), ReportError> {
    let e = chart_err("heatmap");
    let Grid {
        left,
        top,
        cell_w,
        cell_h,
    } = *g;
    let side = TextStyle::from((FONT, 12).into_font()).pos(Pos::new(HPos::Right, VPos::Center));
    let inner = TextStyle::from((FONT, 11).into_font()).pos(Pos::new(HPos::Center, VPos::Center));
    for (i, k) in ex.fault_kinds.iter().enumerate() {
        let y = top + cell_h * i as i32;
        root.draw(&Text::new(
            k.clone(),
            (left - 8, y + cell_h / 2),
            side.clone(),
        ))
        .map_err(&e)?;
        for j in 0..ex.steps.len() {
            let x = left + cell_w * j as i32;
            let Some(c) = ex.cells.get(i * ex.steps.len() + j) else {
                continue;
            };
            root.draw(&Rectangle::new(
                [(x, y), (x + cell_w - 2, y + cell_h - 2)],
                cell_color(c).filled(),
            ))
            .map_err(&e)?;
            let bad = c.beyond_tolerance + c.unsafe_runs;
            let text = if c.runs == 0 {
                "-".to_string()
            } else {
                format!("{bad}/{}", c.runs)
            };
            let style = if c.unsafe_runs > 0 {
                inner.clone().color(&WHITE)
            } else {
                inner.clone()
            };
            root.draw(&Text::new(
                text,
                (x + cell_w / 2 - 1, y + cell_h / 2 - 1),
                style,
            ))
            .map_err(&e)?;
        }
    }
    Ok(())
}

/// The colour key under the heatmap, at height `ly`.
fn heat_legend(root: &Canvas<'_>, ex: &Explorer, left: i32, ly: i32) -> Result<(), ReportError> {
    let e = chart_err("heatmap");
    let legend = TextStyle::from((FONT, 12).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    let mut items = vec![
        (RGBColor(170, 225, 180), "all completed"),
        (RGBColor(250, 230, 140), "some halted safely"),
        (
            RGBColor(240, 115, 60),
            "quorum lost by the faults alone (share)",
        ),
        (RGBColor(120, 0, 20), "unsafe: the procedure's fault"),
    ];
    if ex.lost_allocations > 0 {
        items.push((RGBColor(130, 60, 160), "allocations lost"));
    }
    if ex.stalled_workload > 0 {
        items.push((RGBColor(90, 120, 200), "jobs never recovered"));
    }
    let mut lx = left;
    for (color, name) in items {
        root.draw(&Rectangle::new(
            [(lx, ly - 7), (lx + 14, ly + 7)],
            color.filled(),
        ))
        .map_err(&e)?;
        root.draw(&Text::new(name, (lx + 20, ly), legend.clone()))
            .map_err(&e)?;
        lx += 30 + 8 * name.len() as i32;
    }
    Ok(())
}

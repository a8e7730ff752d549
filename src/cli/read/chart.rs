//! `relation --svg FILE`: the bilateral relation drawn as a timeline (Goldstein sum by month,
//! meetings and commitments by state) with plotters.

use super::*;

/// `dipledger relation A B --svg FILE`: a timeline picture of the relation. Top: the Goldstein
/// sum by month (a line, 0 dashed). Bottom: meetings (circles, filled when held) and commitments
/// (squares, coloured by state) at their dates.
pub async fn relation_svg(
    server: &str,
    a: &str,
    b: &str,
    as_of: Option<&str>,
    path: &std::path::Path,
) -> anyhow::Result<String> {
    use plotters::prelude::*;
    let document: Value = serde_json::from_str(&relation(server, a, b, as_of, true).await?)?;
    let day_of = |text: &str| {
        Timestamp::parse_iso8601(text)
            .ok()
            .map(|t| t.at().unix_micros() as f64 / 86_400_000_000.0)
    };
    let month_day = |month: &str| day_of(&format!("{month}-15"));
    let mut goldstein: Vec<(f64, f64)> = document["goldstein_by_month"]
        .as_object()
        .map(|months| {
            months
                .iter()
                .filter_map(|(m, v)| Some((month_day(m)?, v.as_f64()?)))
                .collect()
        })
        .unwrap_or_default();
    goldstein.sort_by(|x, y| x.0.total_cmp(&y.0));
    let mut meetings = Vec::new();
    let mut commitments = Vec::new();
    for item in document["timeline"].as_array().into_iter().flatten() {
        let status = item["status"].as_str().unwrap_or("");
        match item["kind"].as_str() {
            Some("meeting") => {
                if let Some(day) = item["held_at"].as_str().and_then(day_of) {
                    meetings.push((day, status.ends_with("HELD")));
                }
            }
            Some("commitment") => {
                commitments.push((item["made_at"].as_str().and_then(day_of), status.to_owned()))
            }
            _ => {}
        }
    }
    let days: Vec<f64> = goldstein
        .iter()
        .map(|(d, _)| *d)
        .chain(meetings.iter().map(|(d, _)| *d))
        .chain(commitments.iter().filter_map(|(d, _)| *d))
        .collect();
    let (first, last) = days
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), d| (lo.min(*d), hi.max(*d)));
    let (first, last) = if days.is_empty() {
        (0.0, 30.0)
    } else {
        (first - 20.0, last + 20.0)
    };
    let top = goldstein.iter().map(|(_, v)| v.abs()).fold(1.0f64, f64::max) * 1.1;
    {
        let root = SVGBackend::new(path, (900, 460)).into_drawing_area();
        root.fill(&WHITE)?;
        let root = root.titled(
            &format!("{a}-{b}: Goldstein sum by month; meetings and commitments"),
            ("sans-serif", 16),
        )?;
        let (upper, lower) = root.split_vertically(250);
        let mut chart = ChartBuilder::on(&upper)
            .margin(20)
            .x_label_area_size(0)
            .y_label_area_size(90)
            .build_cartesian_2d(first..last, -top..top)?;
        chart.configure_mesh().disable_x_mesh().draw()?;
        chart.draw_series(LineSeries::new(vec![(first, 0.0), (last, 0.0)], BLACK.mix(0.3)))?;
        chart.draw_series(LineSeries::new(goldstein.clone(), BLUE.stroke_width(2)))?;
        chart.draw_series(
            goldstein
                .iter()
                .map(|(d, v)| Circle::new((*d, *v), 3, BLUE.filled())),
        )?;
        // Lanes: meetings on top, then commitments by state (open, fulfilled, closed otherwise).
        let date_label = |day: &f64| {
            let (year, month, date) =
                Timestamp::from_unix_micros((*day * 86_400_000_000.0) as i64).civil_date();
            format!("{year:04}-{month:02}-{date:02}")
        };
        let lane_label = |lane: &f64| {
            match lane.round() as i64 {
                4 => "meetings",
                3 => "open",
                2 => "fulfilled",
                1 => "lapsed/other",
                _ => "",
            }
            .to_owned()
        };
        let mut marks = ChartBuilder::on(&lower)
            .margin(20)
            .margin_top(0)
            .x_label_area_size(30)
            .y_label_area_size(90)
            .build_cartesian_2d(first..last, 0.5..4.5)?;
        marks
            .configure_mesh()
            .disable_mesh()
            .x_labels(6)
            .x_label_formatter(&date_label)
            .y_labels(5)
            .y_label_formatter(&lane_label)
            .draw()?;
        marks.draw_series(meetings.iter().map(|(d, held)| {
            let style = if *held {
                GREEN.filled()
            } else {
                GREEN.stroke_width(2)
            };
            Circle::new((*d, 4.0), 6, style)
        }))?;
        let step = (last - first) / (commitments.len() as f64 + 1.0);
        let half = (last - first) / 200.0;
        let mut per_lane_day: std::collections::HashMap<(i64, i64), usize> = std::collections::HashMap::new();
        marks.draw_series(commitments.iter().enumerate().map(|(i, (day, status))| {
            let (lane, colour) = if status.ends_with("FULFILLED") {
                (2.0, GREEN)
            } else if status.ends_with("LAPSED")
                || status.ends_with("WITHDRAWN")
                || status.ends_with("SUPERSEDED")
            {
                (1.0, RED)
            } else {
                (3.0, RGBColor(230, 150, 0))
            };
            let x = day.unwrap_or(first + step * (i as f64 + 1.0));
            // Commitments of one lane on one day sit side by side.
            let slot = per_lane_day.entry((lane as i64, x as i64)).or_insert(0);
            let x = x + *slot as f64 * 3.0 * half;
            *slot += 1;
            Rectangle::new(
                [(x - half, lane - 0.25), (x + half, lane + 0.25)],
                colour.filled(),
            )
        }))?;
        root.present()?;
    }
    Ok(format!(
        "wrote {} ({} months of Goldstein sums, {} meetings, {} commitments)\n",
        path.display(),
        goldstein.len(),
        meetings.len(),
        commitments.len()
    ))
}

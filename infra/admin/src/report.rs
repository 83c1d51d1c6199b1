//! The attribution report on the terminal.

use chrono::Utc;
use onecrm_domain::attribution::AttributionReport;
use onecrm_domain::time::istanbul_day_start;

pub fn istanbul_midnight(day: chrono::NaiveDate) -> Result<chrono::DateTime<Utc>, String> {
    istanbul_day_start(day).ok_or_else(|| format!("{day} has no midnight in Istanbul"))
}

pub fn print(report: &AttributionReport, from: chrono::NaiveDate, to: chrono::NaiveDate) {
    println!(
        "leads created {from} – {to} (Istanbul): {} lead(s), {} customer(s) now",
        report.total.leads, report.total.customers
    );
    for (title, column) in [
        ("source", &report.by_source),
        ("utm_source", &report.by_utm_source),
        ("utm_medium", &report.by_utm_medium),
        ("utm_campaign", &report.by_utm_campaign),
        ("Meta campaign", &report.by_meta_campaign),
    ] {
        if column.is_empty() {
            continue;
        }
        println!("\n{title:<40} {:>7} {:>10}", "leads", "customers");
        for (value, counts) in column {
            println!("  {value:<38} {:>7} {:>10}", counts.leads, counts.customers);
        }
    }
}

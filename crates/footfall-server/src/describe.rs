//! What each number means, in Vietnamese and English: the text of tooltips,
//! `aria-label`s and the API's definitions. Pure functions of a [`Definition`].

use footfall::{Accuracy, Definition, Metric, Window};

/// A language the service writes in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Lang {
    /// Vietnamese, the first language.
    Vi,
    /// English.
    En,
}

impl Lang {
    /// Parses `vi` or `en` (anything else is Vietnamese).
    pub fn parse(code: Option<&str>) -> Lang {
        match code {
            Some(code) if code.eq_ignore_ascii_case("en") => Lang::En,
            _ => Lang::Vi,
        }
    }

    /// The language code.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Vi => "vi",
            Lang::En => "en",
        }
    }
}

/// The standard footer label of a window and metric, as on the portal.
pub fn label(window: Window, metric: Metric, lang: Lang) -> &'static str {
    match (lang, window, metric) {
        (Lang::Vi, Window::Online, _) => "Đang online",
        (Lang::Vi, Window::Today, _) => "Hôm nay",
        (Lang::Vi, Window::Week, _) => "Trong tuần",
        (Lang::Vi, Window::Month, _) => "Trong tháng",
        (Lang::Vi, Window::Total, _) => "Tất cả",
        (Lang::En, Window::Online, _) => "Online now",
        (Lang::En, Window::Today, _) => "Today",
        (Lang::En, Window::Week, _) => "This week",
        (Lang::En, Window::Month, _) => "This month",
        (Lang::En, Window::Total, _) => "All time",
    }
}

fn metric_phrase(metric: Metric, lang: Lang) -> &'static str {
    match (lang, metric) {
        (Lang::Vi, Metric::Visits) => "Lượt truy cập",
        (Lang::Vi, Metric::Visitors) => "Số khách",
        (Lang::Vi, Metric::Pageviews) => "Lượt xem trang",
        (Lang::En, Metric::Visits) => "Visits",
        (Lang::En, Metric::Visitors) => "Visitors",
        (Lang::En, Metric::Pageviews) => "Page views",
    }
}

/// One sentence (or two) saying exactly what a figure counts.
pub fn describe(definition: &Definition, visit_timeout_minutes: u32, lang: Lang) -> String {
    let zone = &definition.time_zone;
    let metric = definition.metric;
    if definition.window == Window::Online {
        let minutes = definition.window_minutes.unwrap_or(5);
        // Exact while few are online, an estimate past that: say which this figure is.
        let estimate = definition.accuracy != Accuracy::Exact;
        return match (lang, estimate) {
            (Lang::Vi, true) => {
                format!("Số khách có hoạt động trong {minutes} phút gần nhất (ước tính)")
            }
            (Lang::Vi, false) => format!("Số khách có hoạt động trong {minutes} phút gần nhất"),
            (Lang::En, true) => format!("Visitors active in the last {minutes} minutes (estimate)"),
            (Lang::En, false) => format!("Visitors active in the last {minutes} minutes"),
        };
    }
    let what = metric_phrase(metric, lang);
    let window = match (lang, definition.window) {
        (Lang::Vi, Window::Today) => format!("từ 00:00 hôm nay (giờ {zone})"),
        (Lang::Vi, Window::Week) => format!("trong tuần này (giờ {zone})"),
        (Lang::Vi, Window::Month) => format!("từ ngày 1 tháng này (giờ {zone})"),
        (Lang::Vi, _) => "từ trước đến nay".to_owned(),
        (Lang::En, Window::Today) => format!("since 00:00 today ({zone} time)"),
        (Lang::En, Window::Week) => format!("this week ({zone} time)"),
        (Lang::En, Window::Month) => format!("since the 1st of this month ({zone} time)"),
        (Lang::En, _) => "all time".to_owned(),
    };
    let mut text = format!("{what} {window}");
    match (lang, metric) {
        (Lang::Vi, Metric::Visits) => text.push_str(&format!(
            "; một lượt mới bắt đầu sau {visit_timeout_minutes} phút không hoạt động"
        )),
        (Lang::En, Metric::Visits) => text.push_str(&format!(
            "; a new visit starts after {visit_timeout_minutes} minutes without activity"
        )),
        _ => {}
    }
    match (lang, definition.accuracy) {
        (_, Accuracy::Exact) => {}
        (Lang::Vi, Accuracy::Estimate) => text.push_str(" (ước tính)"),
        (Lang::En, Accuracy::Estimate) => text.push_str(" (estimate)"),
        (Lang::Vi, Accuracy::EstimatePerSaltPeriod) => {
            text.push_str(" (ước tính; tổng số khách mỗi ngày, khách quay lại ngày khác được tính lại)")
        }
        (Lang::En, Accuracy::EstimatePerSaltPeriod) => {
            text.push_str(" (estimate; the sum of each day's visitors, a visitor returning on another day counts again)")
        }
    }
    if definition.baseline > 0 {
        match lang {
            Lang::Vi => text.push_str(", gồm số liệu của hệ thống cũ"),
            Lang::En => text.push_str(", including the previous system's count"),
        }
    }
    text
}

/// The API name of an accuracy.
pub fn accuracy_name(accuracy: Accuracy) -> &'static str {
    match accuracy {
        Accuracy::Exact => "exact",
        Accuracy::Estimate => "estimate",
        Accuracy::EstimatePerSaltPeriod => "estimate_per_salt_period",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn definition(metric: Metric, window: Window, accuracy: Accuracy, baseline: u64) -> Definition {
        Definition {
            metric,
            window,
            time_zone: "Asia/Ho_Chi_Minh".into(),
            accuracy,
            since: None,
            window_minutes: Some(5),
            baseline,
            as_of: "2026-11-30T03:00:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn sentences_in_both_languages() {
        let cases = [
            (
                definition(Metric::Visitors, Window::Online, Accuracy::Estimate, 0),
                "Số khách có hoạt động trong 5 phút gần nhất (ước tính)",
                "Visitors active in the last 5 minutes (estimate)",
            ),
            (
                definition(Metric::Visitors, Window::Online, Accuracy::Exact, 0),
                "Số khách có hoạt động trong 5 phút gần nhất",
                "Visitors active in the last 5 minutes",
            ),
            (
                definition(Metric::Visits, Window::Today, Accuracy::Exact, 0),
                "Lượt truy cập từ 00:00 hôm nay (giờ Asia/Ho_Chi_Minh); một lượt mới bắt đầu sau 30 phút không hoạt động",
                "Visits since 00:00 today (Asia/Ho_Chi_Minh time); a new visit starts after 30 minutes without activity",
            ),
            (
                definition(Metric::Visits, Window::Total, Accuracy::Exact, 7_289_126),
                "Lượt truy cập từ trước đến nay; một lượt mới bắt đầu sau 30 phút không hoạt động, gồm số liệu của hệ thống cũ",
                "Visits all time; a new visit starts after 30 minutes without activity, including the previous system's count",
            ),
            (
                definition(
                    Metric::Visitors,
                    Window::Week,
                    Accuracy::EstimatePerSaltPeriod,
                    0,
                ),
                "Số khách trong tuần này (giờ Asia/Ho_Chi_Minh) (ước tính; tổng số khách mỗi ngày, khách quay lại ngày khác được tính lại)",
                "Visitors this week (Asia/Ho_Chi_Minh time) (estimate; the sum of each day's visitors, a visitor returning on another day counts again)",
            ),
            (
                definition(Metric::Pageviews, Window::Month, Accuracy::Exact, 0),
                "Lượt xem trang từ ngày 1 tháng này (giờ Asia/Ho_Chi_Minh)",
                "Page views since the 1st of this month (Asia/Ho_Chi_Minh time)",
            ),
        ];
        for (definition, vi, en) in cases {
            assert_eq!(describe(&definition, 30, Lang::Vi), vi);
            assert_eq!(describe(&definition, 30, Lang::En), en);
        }
    }

    #[test]
    fn portal_labels() {
        let labels: Vec<&str> = [Window::Online, Window::Today, Window::Week, Window::Total]
            .into_iter()
            .map(|w| label(w, Metric::Visits, Lang::Vi))
            .collect();
        assert_eq!(labels, ["Đang online", "Hôm nay", "Trong tuần", "Tất cả"]);
        assert_eq!(Lang::parse(Some("EN")), Lang::En);
        assert_eq!(Lang::parse(Some("fr")), Lang::Vi);
    }
}

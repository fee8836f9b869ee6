//! What the robot filter decides: a verdict, and for a robot its kind.

/// What kind of robot a User-Agent belongs to. A bounded set, fit for a metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RobotKind {
    /// Search engines' crawlers and their fetchers (Googlebot, bingbot, GoogleOther…).
    Search,
    /// AI crawlers and agents fetching for a chat user (GPTBot, ClaudeBot, Claude-User…).
    Ai,
    /// Link-preview fetchers of social networks and messengers (facebookexternalhit…).
    Social,
    /// SEO and marketing crawlers (AhrefsBot, SemrushBot…).
    Seo,
    /// Feed readers and podcast fetchers.
    Feed,
    /// Uptime and synthetic monitoring, often real Chrome (PTST, GTmetrix, Pingdom…).
    Monitor,
    /// Vulnerability and Internet-wide scanners (Nikto, WPScan, zgrab, CensysInspect…).
    Scanner,
    /// HTTP libraries, command-line clients, headless and automated browsers.
    Tool,
    /// Web archivers (heritrix, ia_archiver…).
    Archiver,
    /// A robot that fits none of the kinds above.
    Other,
    /// Matched a robot pattern from the operator's configuration.
    Configured,
    /// No User-Agent, or a blank one.
    Empty,
}

impl RobotKind {
    /// Every kind, in the order of their labels' documentation.
    pub const ALL: [RobotKind; 12] = [
        RobotKind::Search,
        RobotKind::Ai,
        RobotKind::Social,
        RobotKind::Seo,
        RobotKind::Feed,
        RobotKind::Monitor,
        RobotKind::Scanner,
        RobotKind::Tool,
        RobotKind::Archiver,
        RobotKind::Other,
        RobotKind::Configured,
        RobotKind::Empty,
    ];

    /// A short lowercase label: `search`, `ai`, `social`, `seo`, `feed`, `monitor`,
    /// `scanner`, `tool`, `archiver`, `other`, `configured` or `empty`.
    pub fn label(self) -> &'static str {
        match self {
            RobotKind::Search => "search",
            RobotKind::Ai => "ai",
            RobotKind::Social => "social",
            RobotKind::Seo => "seo",
            RobotKind::Feed => "feed",
            RobotKind::Monitor => "monitor",
            RobotKind::Scanner => "scanner",
            RobotKind::Tool => "tool",
            RobotKind::Archiver => "archiver",
            RobotKind::Other => "other",
            RobotKind::Configured => "configured",
            RobotKind::Empty => "empty",
        }
    }

    /// The kind with this label, as written in `data/robots/supplement.txt`.
    pub(super) fn from_label(label: &str) -> Option<RobotKind> {
        RobotKind::ALL
            .into_iter()
            .find(|kind| kind.label() == label)
    }
}

/// The judgement on one User-Agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// A person's browser: count it.
    Human,
    /// A robot of this kind: drop it.
    Robot(RobotKind),
}

impl Verdict {
    /// True for [`Verdict::Robot`].
    pub fn is_robot(self) -> bool {
        matches!(self, Verdict::Robot(_))
    }
}

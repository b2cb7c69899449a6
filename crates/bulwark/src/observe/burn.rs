//! Error-budget burn alert levels, shared by the SLO tracker that raises
//! them and the alerts that carry them.

/// Google SRE's multiwindow burn-rate alert levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BurnSeverity {
    /// Fast burn: wake someone up.
    Page,
    /// Slow burn: someone should look during working hours.
    Ticket,
}

impl BurnSeverity {
    pub fn as_str(self) -> &'static str {
        match self {
            BurnSeverity::Page => "page",
            BurnSeverity::Ticket => "ticket",
        }
    }
}

//! `mcp-audit query`: the auditor's questions ("who called X on Y last Tuesday"), answered
//! from the segments after the chain and checkpoints have been verified.

use crate::record::Record;

#[derive(Default, Debug, Clone)]
pub struct Filter {
    pub principal: Option<String>,
    pub tool: Option<String>,
    pub server: Option<String>,
    pub decision: Option<String>,
    pub method: Option<String>,
    pub trace_id: Option<String>,
    /// Inclusive lower and exclusive upper bound, as prefixes of RFC 3339 UTC times.
    pub since: Option<String>,
    pub until: Option<String>,
}

impl Filter {
    pub fn matches(&self, r: &Record) -> bool {
        let eq = |want: &Option<String>, have: Option<&str>| want.as_deref().is_none_or(|w| have == Some(w));
        eq(&self.principal, r.principal.subject.as_deref())
            && eq(&self.tool, r.target.as_deref())
            && (self.server.is_none()
                || eq(&self.server, r.server.as_deref())
                || eq(&self.server, r.backend.as_deref())
                || eq(&self.server, r.virtual_server.as_deref()))
            && eq(&self.decision, r.decision.as_deref())
            && eq(&self.method, r.method.as_deref())
            && eq(&self.trace_id, Some(r.trace_id.as_str()))
            && self.since.as_deref().is_none_or(|s| r.time.as_str() >= s)
            && self.until.as_deref().is_none_or(|u| r.time.as_str() < u)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        let mut r = Record {
            time: "2026-12-01T10:00:00.000000Z".into(),
            ..Default::default()
        };
        r.principal.subject = Some("alice".into());
        r.target = Some("delete_branch".into());
        r.server = Some("git".into());
        let f = Filter {
            principal: Some("alice".into()),
            tool: Some("delete_branch".into()),
            server: Some("git".into()),
            ..Default::default()
        };
        assert!(f.matches(&r));
        assert!(!Filter {
            principal: Some("bob".into()),
            ..Default::default()
        }
        .matches(&r));
        assert!(Filter {
            since: Some("2026-12-01".into()),
            until: Some("2026-12-02".into()),
            ..Default::default()
        }
        .matches(&r));
        assert!(!Filter {
            since: Some("2026-12-01T10:00:01".into()),
            ..Default::default()
        }
        .matches(&r));
    }
}

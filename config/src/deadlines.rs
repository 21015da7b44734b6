//! The deadline policy (`config/dev/deadlines.toml` by default): how long a bureau has to
//! acknowledge and to complete a task, by kind and optionally severity.

use serde::Deserialize;

use crate::calendar::Span;

/// The policy `xietong up` and nodes without their own file use.
pub const DEFAULT_DEADLINES_TOML: &str = include_str!("../dev/deadlines.toml");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    rule: Vec<RuleFile>,
    #[serde(default)]
    escalation: Option<EscalationFile>,
    #[serde(default)]
    complaints: Option<ComplaintsFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ComplaintsFile {
    accept: String,
    notify: String,
}

/// The statutory clocks of complaints and tip-offs (投诉举报): decide to accept or refuse within
/// `accept` of registration (7 working days), and tell a real-name reporter the decision
/// within `notify` of it (5 working days).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ComplaintClocks {
    pub accept: Span,
    pub notify: Span,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EscalationFile {
    remind_every: String,
    reminders_max: u32,
    escalate_after_reminders: u32,
    feedback_postpones_reminder: bool,
}

/// What the leader's watch does once a deadline is missed: remind the assignee every
/// `remind_every` (at most `reminders_max` times), and escalate to the assignee's parent
/// bureau once `escalate_after_reminders` reminders went unheeded. A missed completion also
/// escalates at once, and an emergency escalates one tier above the dispatcher as well.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EscalationPolicy {
    pub remind_every_ms: u64,
    pub reminders_max: u32,
    pub escalate_after_reminders: u32,
    /// A progress report (反馈) restarts the reminder interval: a bureau that reports is not
    /// chased as if it were silent.
    pub feedback_postpones_reminder: bool,
}

/// Reminders after one missed deadline at most, whatever the config says.
pub const REMINDERS_MAX: u32 = 20;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    kind: Option<String>,
    severity: Option<String>,
    ack: String,
    complete: String,
    #[serde(default)]
    extension: Option<String>,
    #[serde(default)]
    extensions_max: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct DeadlineRule {
    /// `None` matches every kind.
    pub kind: Option<String>,
    pub severity: Option<String>,
    pub ack: Span,
    pub complete: Span,
    /// How far one granted extension moves the completion deadline; `None`: no extensions.
    pub extension: Option<Span>,
    /// Extensions a task may be granted (1 when an extension is set and this is not).
    pub extensions_max: u32,
}

#[derive(Debug, Clone)]
pub struct DeadlinePolicy {
    rules: Vec<DeadlineRule>,
    pub escalation: EscalationPolicy,
    pub complaints: ComplaintClocks,
}

impl DeadlinePolicy {
    /// Parses and checks a policy: spans must parse, and the last rule must match everything
    /// so that every task gets deadlines.
    pub fn parse(text: &str) -> Result<DeadlinePolicy, String> {
        let file: PolicyFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut rules = Vec::new();
        for (position, rule) in file.rule.into_iter().enumerate() {
            let span = |field: &str, text: &str| {
                Span::parse(text)
                    .ok_or_else(|| format!("rule {}: {field} {text:?} is not like 15m, 4h, 3d or 15wd", position + 1))
            };
            let extension = rule.extension.as_deref().map(|text| span("extension", text)).transpose()?;
            let extensions_max = match (extension, rule.extensions_max) {
                (None, Some(n)) if n > 0 => {
                    return Err(format!("rule {}: extensions_max without extension", position + 1))
                }
                (None, _) => 0,
                (Some(_), max) => max.unwrap_or(1),
            };
            rules.push(DeadlineRule {
                ack: span("ack", &rule.ack)?,
                complete: span("complete", &rule.complete)?,
                extension,
                extensions_max,
                kind: rule.kind,
                severity: rule.severity,
            });
        }
        let escalation = match file.escalation {
            None => EscalationPolicy {
                remind_every_ms: 30 * 60 * 1000,
                reminders_max: 3,
                escalate_after_reminders: 1,
                feedback_postpones_reminder: true,
            },
            Some(e) => {
                let remind_every_ms = match Span::parse(&e.remind_every) {
                    Some(Span::Elapsed(duration)) => duration.whole_milliseconds() as u64,
                    _ => {
                        return Err(format!("escalation.remind_every {:?} must be like 30s, 30m or 2h", e.remind_every))
                    }
                };
                if e.reminders_max > REMINDERS_MAX {
                    return Err(format!("escalation.reminders_max is at most {REMINDERS_MAX}"));
                }
                EscalationPolicy {
                    remind_every_ms,
                    reminders_max: e.reminders_max,
                    escalate_after_reminders: e.escalate_after_reminders,
                    feedback_postpones_reminder: e.feedback_postpones_reminder,
                }
            }
        };
        let complaints = match file.complaints {
            None => ComplaintClocks { accept: Span::WorkingDays(7), notify: Span::WorkingDays(5) },
            Some(c) => {
                let span = |field: &str, text: &str| {
                    Span::parse(text)
                        .ok_or_else(|| format!("complaints.{field} {text:?} is not like 15m, 4h, 3d or 7wd"))
                };
                ComplaintClocks { accept: span("accept", &c.accept)?, notify: span("notify", &c.notify)? }
            }
        };
        match rules.last() {
            Some(last) if last.kind.is_none() && last.severity.is_none() => {
                Ok(DeadlinePolicy { rules, escalation, complaints })
            }
            _ => Err("the last rule must have neither kind nor severity, so that every task matches".into()),
        }
    }

    pub fn default_policy() -> DeadlinePolicy {
        DeadlinePolicy::parse(DEFAULT_DEADLINES_TOML).expect("the default policy is valid (checked by tests)")
    }

    /// The first rule matching the task's kind and severity (wire names).
    pub fn rule_for(&self, kind: &str, severity: &str) -> &DeadlineRule {
        self.rules
            .iter()
            .find(|rule| {
                rule.kind.as_deref().is_none_or(|k| k == kind) && rule.severity.as_deref().is_none_or(|s| s == severity)
            })
            .expect("the last rule matches everything")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_policy_follows_the_brief() {
        let policy = DeadlinePolicy::default_policy();
        let emergency = policy.rule_for("emergency", "critical");
        assert_eq!(emergency.ack, Span::parse("15m").expect("span"));
        assert_eq!(emergency.complete, Span::parse("24h").expect("span"));
        let lead = policy.rule_for("lead", "normal");
        assert_eq!((lead.ack, lead.complete), (Span::WorkingDays(1), Span::WorkingDays(15)));
        assert_eq!(policy.rule_for("risk_alert", "critical").ack, Span::parse("1h").expect("span"));
        assert_eq!(policy.rule_for("risk_alert", "normal").complete, Span::WorkingDays(5));
        assert_eq!(policy.rule_for("referral", "high").complete, Span::WorkingDays(10));
        // A lead may be extended once by 15 working days, with approval.
        assert_eq!((lead.extension, lead.extensions_max), (Some(Span::WorkingDays(15)), 1));
        assert_eq!(policy.rule_for("emergency", "high").extensions_max, 0);
    }

    #[test]
    fn a_policy_without_a_catch_all_or_with_bad_spans_is_refused() {
        assert!(DeadlinePolicy::parse("[[rule]]\nkind='lead'\nack='1wd'\ncomplete='15wd'\n").is_err());
        assert!(DeadlinePolicy::parse("[[rule]]\nack='soon'\ncomplete='15wd'\n").is_err());
        assert!(DeadlinePolicy::parse("[[rule]]\nack='1h'\ncomplete='2h'\nextra=1\n").is_err());
    }
}

//! The small expression languages of `expect:`: bounds (`">= 99%"`, `"< 500ms"`, `"== 0"`) and metric checks
//! (`'llm_gateway_fallbacks_total{from="kimi"} > 0'`, `'value(llm_gateway_breaker_state{provider="openai"}) == 1'`).

use std::fmt;

use serde::Serialize;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

impl Op {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }

    /// Whether `measured OP bound` holds (equality with a small tolerance for shares).
    pub fn holds(self, measured: f64, bound: f64) -> bool {
        let eq = (measured - bound).abs() <= 1e-9 * bound.abs().max(1.0);
        match self {
            Op::Lt => measured < bound && !eq,
            Op::Le => measured <= bound || eq,
            Op::Gt => measured > bound && !eq,
            Op::Ge => measured >= bound || eq,
            Op::Eq => eq,
            Op::Ne => !eq,
        }
    }
}

/// The unit a bound was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// A bare number.
    Plain,
    /// `95%`: the value is stored as a fraction (0.95).
    Percent,
    /// `500ms`, `2s`, `150us`: the value is stored in seconds.
    Seconds,
}

/// `OP VALUE[UNIT]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Bound {
    /// The comparison.
    pub op: Op,
    /// The value (a fraction for percentages, seconds for durations).
    pub value: f64,
    /// How it was written.
    pub unit: Unit,
}

impl Bound {
    /// Parses `">= 99%"`, `"< 1.5s"`, `"== 0"`.
    pub fn parse(text: &str) -> Result<Bound, String> {
        let t = text.trim();
        let ops = [
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<", Op::Lt),
            (">", Op::Gt),
        ];
        let Some((rest, op)) = ops
            .iter()
            .find_map(|(s, op)| t.strip_prefix(s).map(|r| (r.trim(), *op)))
        else {
            return Err(format!("{text:?} does not start with an operator; expected e.g. \">= 99%\", \"< 500ms\" or \"== 0\" (operators < <= > >= == !=)"));
        };
        let (number, unit, scale) = if let Some(n) = rest.strip_suffix('%') {
            (n, Unit::Percent, 0.01)
        } else if let Some(n) = rest.strip_suffix("ms") {
            (n, Unit::Seconds, 1e-3)
        } else if let Some(n) = rest.strip_suffix("us") {
            (n, Unit::Seconds, 1e-6)
        } else if let Some(n) = rest.strip_suffix('s') {
            (n, Unit::Seconds, 1.0)
        } else {
            (rest, Unit::Plain, 1.0)
        };
        let value: f64 = number.trim().parse().map_err(|_| {
            format!(
                "{text:?}: {:?} is not a number; expected e.g. \">= 99%\", \"< 500ms\" or \"== 0\"",
                number.trim()
            )
        })?;
        if !value.is_finite() {
            return Err(format!("{text:?}: the value must be finite"));
        }
        Ok(Bound {
            op,
            value: value * scale,
            unit,
        })
    }

    /// Formats a measured value in this bound's unit.
    pub fn show(&self, measured: f64) -> String {
        show_value(measured, self.unit)
    }
}

/// Formats a value the way a bound of `unit` is written.
pub fn show_value(v: f64, unit: Unit) -> String {
    match unit {
        Unit::Percent => format!("{:.2}%", v * 100.0),
        Unit::Seconds if v > 0.0 && v < 1e-3 => format!("{:.0}us", v * 1e6),
        Unit::Seconds if v < 1.0 => format!("{:.1}ms", v * 1e3),
        Unit::Seconds => format!("{v:.3}s"),
        Unit::Plain if v.fract() == 0.0 && v.abs() < 1e15 => format!("{v:.0}"),
        Unit::Plain => format!("{v:.4}"),
    }
}

impl fmt::Display for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.op.as_str(), self.show(self.value))
    }
}

/// One label matcher of a selector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LabelMatch {
    /// Label name.
    pub name: String,
    /// `true` for `=`, `false` for `!=`.
    pub equal: bool,
    /// Value.
    pub value: String,
}

/// `name{label="value",other!="x"}`: every series of that name whose labels match; values are summed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Selector {
    /// Metric name (the sample name, e.g. `llm_gateway_fallbacks_total`).
    pub name: String,
    /// Label matchers.
    pub labels: Vec<LabelMatch>,
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if !self.labels.is_empty() {
            let parts: Vec<String> = self
                .labels
                .iter()
                .map(|l| format!("{}{}\"{}\"", l.name, if l.equal { "=" } else { "!=" }, l.value))
                .collect();
            write!(f, "{{{}}}", parts.join(","))?;
        }
        Ok(())
    }
}

/// What a metric check measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricFunc {
    /// The increase over the phase (the default, for counters).
    Increase,
    /// The value at the end of the phase (for gauges).
    Value,
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// Parses `name{...}` and returns the rest of the text.
pub fn parse_selector(text: &str) -> Result<(Selector, &str), String> {
    let t = text.trim_start();
    let end = t.find(|c: char| !is_name_char(c)).unwrap_or(t.len());
    let name = &t[..end];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(format!(
            "{text:?}: expected a metric name such as llm_gateway_fallbacks_total"
        ));
    }
    let mut rest = &t[end..];
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let close = inner
            .find('}')
            .ok_or_else(|| format!("{text:?}: unclosed '{{'"))?;
        for part in inner[..close].split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (lname, equal, value) = if let Some((l, v)) = part.split_once("!=") {
                (l, false, v)
            } else if let Some((l, v)) = part.split_once('=') {
                (l, true, v)
            } else {
                return Err(format!(
                    "{text:?}: label matcher {part:?} must be name=\"value\" or name!=\"value\""
                ));
            };
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .ok_or_else(|| {
                    format!(
                        "{text:?}: the value of label {:?} must be in double quotes",
                        lname.trim()
                    )
                })?;
            labels.push(LabelMatch {
                name: lname.trim().to_string(),
                equal,
                value: value.to_string(),
            });
        }
        rest = &inner[close + 1..];
    }
    Ok((
        Selector {
            name: name.to_string(),
            labels,
        },
        rest,
    ))
}

/// Parses a metric check: `[increase(|value(]SELECTOR[)] OP VALUE`.
pub fn parse_metric_check(text: &str) -> Result<(MetricFunc, Selector, Bound), String> {
    let t = text.trim();
    let (func, body) = if let Some(b) = t.strip_prefix("value(") {
        (MetricFunc::Value, b)
    } else if let Some(b) = t.strip_prefix("increase(") {
        (MetricFunc::Increase, b)
    } else {
        (MetricFunc::Increase, t)
    };
    let (selector, mut rest) = parse_selector(body)?;
    if body.len() != t.len() {
        rest = rest
            .trim_start()
            .strip_prefix(')')
            .ok_or_else(|| format!("{text:?}: missing ')' after the selector"))?;
    }
    let bound = Bound::parse(rest)?;
    if bound.unit != Unit::Plain {
        return Err(format!(
            "{text:?}: a metric bound is a plain number (no %, no duration unit)"
        ));
    }
    Ok((func, selector, bound))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds() {
        assert_eq!(
            Bound::parse(">= 99%").unwrap(),
            Bound {
                op: Op::Ge,
                value: 0.99,
                unit: Unit::Percent
            }
        );
        assert_eq!(
            Bound::parse("<500ms").unwrap(),
            Bound {
                op: Op::Lt,
                value: 0.5,
                unit: Unit::Seconds
            }
        );
        assert_eq!(
            Bound::parse("== 0").unwrap(),
            Bound {
                op: Op::Eq,
                value: 0.0,
                unit: Unit::Plain
            }
        );
        assert!(Bound::parse("99%")
            .unwrap_err()
            .contains("does not start with an operator"));
        assert!(Bound::parse("< fast")
            .unwrap_err()
            .contains("\"fast\" is not a number"));
        assert!(Op::Ge.holds(0.99, 0.99) && !Op::Gt.holds(1.0, 1.0) && Op::Eq.holds(1.0, 1.0));
    }

    #[test]
    fn metric_checks() {
        let (f, s, b) =
            parse_metric_check(r#"llm_gateway_fallbacks_total{from="kimi", reason!="timeout"} > 0"#).unwrap();
        assert_eq!(f, MetricFunc::Increase);
        assert_eq!(
            s.to_string(),
            r#"llm_gateway_fallbacks_total{from="kimi",reason!="timeout"}"#
        );
        assert_eq!(b.op, Op::Gt);
        let (f, s, _) =
            parse_metric_check(r#"value(llm_gateway_breaker_state{provider="openai"}) == 1"#).unwrap();
        assert_eq!(
            (f, s.name.as_str()),
            (MetricFunc::Value, "llm_gateway_breaker_state")
        );
        assert!(parse_metric_check("x{a=b} > 0")
            .unwrap_err()
            .contains("double quotes"));
        assert!(parse_metric_check("x > 5%").unwrap_err().contains("plain number"));
    }
}

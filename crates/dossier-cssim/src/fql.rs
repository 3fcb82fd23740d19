//! The subset of FQL (PRODUCERS.md §2.2) the emulator understands: `+`-joined terms on
//! `product` (`product:'epp'`, `product:['epp','idp']`) and `updated_timestamp` (`>`, `>=`,
//! `<`, `<=` a quoted RFC 3339 time). Anything else is refused, as the API refuses a filter it
//! cannot read.

use chrono::{DateTime, Utc};

/// A comparison on `updated_timestamp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Gt,
    Ge,
    Lt,
    Le,
}

/// A parsed filter.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Filter {
    pub products: Option<Vec<String>>,
    pub updated: Vec<(Op, DateTime<Utc>)>,
}

impl Filter {
    pub(crate) fn parse(text: &str) -> Result<Filter, String> {
        let mut filter = Filter::default();
        for term in text.split('+').map(str::trim).filter(|t| !t.is_empty()) {
            let (property, value) = term
                .split_once(':')
                .ok_or_else(|| format!("Invalid filter: {term:?} is not property:value"))?;
            match property.trim() {
                "product" => filter.products = Some(products(value.trim())?),
                "updated_timestamp" => filter.updated.push(comparison(value.trim())?),
                other => {
                    return Err(format!(
                        "Invalid filter: property {other:?} is not supported here"
                    ))
                }
            }
        }
        Ok(filter)
    }

    /// The filter as a scan applies it to stored alerts, whose update times are kept as
    /// `nanos_text` (which sorts as time does): the bounds are written once in that form.
    pub(crate) fn prepared(&self) -> Prepared<'_> {
        Prepared {
            products: self.products.as_deref(),
            bounds: self
                .updated
                .iter()
                .map(|(op, t)| (*op, crate::generate::nanos_text(*t)))
                .collect(),
        }
    }

    /// The lowest update time a match can have, for starting the scan there.
    pub(crate) fn lower_bound(&self) -> Option<DateTime<Utc>> {
        self.updated
            .iter()
            .filter(|(op, _)| matches!(op, Op::Gt | Op::Ge))
            .map(|(_, t)| *t)
            .max()
    }
}

/// A filter ready for a scan: see [`Filter::prepared`].
pub(crate) struct Prepared<'a> {
    products: Option<&'a [String]>,
    bounds: Vec<(Op, String)>,
}

impl Prepared<'_> {
    /// The one product the filter asks for, when it asks for exactly one.
    pub(crate) fn only_product(&self) -> Option<&str> {
        match self.products {
            Some([one]) => Some(one.as_str()),
            _ => None,
        }
    }

    /// The part of `sorted` (in update time order, times as `nanos_text`) whose times meet the
    /// filter's time bounds, found by bisection.
    pub(crate) fn span<T>(
        &self,
        sorted: &[T],
        time: impl Fn(&T) -> &str,
    ) -> std::ops::Range<usize> {
        let (mut lo, mut hi) = (0, sorted.len());
        for (op, bound) in &self.bounds {
            let bound = bound.as_str();
            match op {
                Op::Ge => lo = lo.max(sorted.partition_point(|x| time(x) < bound)),
                Op::Gt => lo = lo.max(sorted.partition_point(|x| time(x) <= bound)),
                Op::Le => hi = hi.min(sorted.partition_point(|x| time(x) <= bound)),
                Op::Lt => hi = hi.min(sorted.partition_point(|x| time(x) < bound)),
            }
        }
        lo..hi.max(lo)
    }

    /// Tells whether an alert with this product and update time (as `nanos_text`) matches.
    pub(crate) fn matches(&self, product: Option<&str>, updated: &str) -> bool {
        let product_ok = self
            .products
            .is_none_or(|ps| product.is_some_and(|p| ps.iter().any(|q| q == p)));
        product_ok
            && self.bounds.iter().all(|(op, bound)| match op {
                Op::Gt => updated > bound.as_str(),
                Op::Ge => updated >= bound.as_str(),
                Op::Lt => updated < bound.as_str(),
                Op::Le => updated <= bound.as_str(),
            })
    }
}

fn quoted(value: &str) -> Result<&str, String> {
    value
        .strip_prefix('\'')
        .and_then(|v| v.strip_suffix('\''))
        .ok_or_else(|| format!("Invalid filter: {value:?} is not a quoted value"))
}

fn products(value: &str) -> Result<Vec<String>, String> {
    if let Some(list) = value.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
        return list
            .split(',')
            .map(|v| quoted(v.trim()).map(str::to_owned))
            .collect();
    }
    Ok(vec![quoted(value)?.to_owned()])
}

fn comparison(value: &str) -> Result<(Op, DateTime<Utc>), String> {
    let (op, rest) = if let Some(r) = value.strip_prefix(">=") {
        (Op::Ge, r)
    } else if let Some(r) = value.strip_prefix("<=") {
        (Op::Le, r)
    } else if let Some(r) = value.strip_prefix('>') {
        (Op::Gt, r)
    } else if let Some(r) = value.strip_prefix('<') {
        (Op::Lt, r)
    } else {
        return Err(format!(
            "Invalid filter: updated_timestamp takes >, >=, < or <=, not {value:?}"
        ));
    };
    let text = quoted(rest.trim())?;
    let t = DateTime::parse_from_rfc3339(text)
        .map_err(|_| format!("Invalid filter: {text:?} is not an RFC 3339 time"))?;
    Ok((op, t.with_timezone(&Utc)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_pollers_filter_parses_and_matches() {
        let f =
            Filter::parse("product:'epp'+updated_timestamp:>='2024-01-01T00:00:00.5Z'").unwrap();
        assert_eq!(f.lower_bound(), Some(t("2024-01-01T00:00:00.5Z")));
        let at = |s: &str| crate::generate::nanos_text(t(s));
        let p = f.prepared();
        assert!(p.matches(Some("epp"), &at("2024-01-01T00:00:00.5Z")));
        assert!(!p.matches(Some("idp"), &at("2024-01-02T00:00:00Z")));
        assert!(!p.matches(Some("epp"), &at("2024-01-01T00:00:00.499999999Z")));
        let f = Filter::parse("updated_timestamp:>'2024-01-01T00:00:00Z'+updated_timestamp:<='2024-01-02T00:00:00Z'+product:['epp','idp']").unwrap();
        let p = f.prepared();
        assert!(p.matches(Some("idp"), &at("2024-01-02T00:00:00Z")));
        assert!(!p.matches(Some("epp"), &at("2024-01-01T00:00:00Z")));
        assert!(!p.matches(None, &at("2024-01-01T12:00:00Z")));
    }

    #[test]
    fn a_span_is_what_a_scan_would_match() {
        let times: Vec<String> = ["01", "02", "02", "03", "05", "08"]
            .iter()
            .map(|d| crate::generate::nanos_text(t(&format!("2024-01-{d}T00:00:00Z"))))
            .collect();
        for text in [
            "product:'epp'+updated_timestamp:>='2024-01-02T00:00:00Z'",
            "product:'epp'+updated_timestamp:>'2024-01-02T00:00:00Z'",
            "product:'epp'+updated_timestamp:>'2024-01-02T00:00:00Z'+updated_timestamp:<='2024-01-05T00:00:00Z'",
            "product:'epp'+updated_timestamp:<'2024-01-02T00:00:00Z'",
            "product:'epp'+updated_timestamp:>'2024-01-09T00:00:00Z'",
            "product:'epp'",
        ] {
            let f = Filter::parse(text).unwrap();
            let p = f.prepared();
            assert_eq!(p.only_product(), Some("epp"));
            let scanned: Vec<usize> = (0..times.len())
                .filter(|i| p.matches(Some("epp"), &times[*i]))
                .collect();
            let span: Vec<usize> = p.span(&times, String::as_str).collect();
            assert_eq!(span, scanned, "{text}");
        }
        let both = Filter::parse("product:['epp','idp']").unwrap();
        assert_eq!(both.prepared().only_product(), None);
    }

    #[test]
    fn what_it_cannot_read_is_refused() {
        for bad in [
            "status:'new'",
            "product:epp",
            "updated_timestamp:'2024-01-01T00:00:00Z'",
            "updated_timestamp:>'yesterday'",
            "product",
        ] {
            assert!(Filter::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Filter::parse("").unwrap(), Filter::default());
    }
}

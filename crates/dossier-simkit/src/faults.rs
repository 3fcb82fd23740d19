//! How a list of faults is written for any emulator (`dossier sim --faults 429:2,500*3`): items
//! separated by commas, each `NAME` or `NAME:ARG`, optionally repeated as `ITEM*N`. Each
//! emulator names its own faults; the list's syntax and its limits are read here, once.

/// The most times one item may repeat.
const MAX_REPEAT: usize = 10_000;
/// The most faults a list may hold in all.
const MAX_TOTAL: usize = 100_000;

/// One item of a list, as an emulator reads it into a fault.
#[derive(Debug, Clone, Copy)]
pub struct Item<'a> {
    /// The item as written, for error messages.
    pub text: &'a str,
    /// The fault's name, lowercase: `429`, `slow`.
    pub name: &'a str,
    /// What follows `:`, if anything.
    pub arg: Option<&'a str>,
}

impl Item<'_> {
    /// The item's argument as a number.
    ///
    /// # Errors
    /// When there is none or it is not a number: says what the fault takes (`what`).
    pub fn number(&self, what: &str) -> Result<u64, String> {
        let name = self.name;
        self.arg
            .and_then(|a| a.parse::<u64>().ok())
            .ok_or_else(|| format!("{:?}: {name} takes {what}, e.g. {name}:2", self.text))
    }
}

/// Reads a list of faults in the order they are served, each item read by `fault`.
///
/// # Errors
/// What is wrong with the first item that cannot be read (`fault`'s error for an unknown name).
pub fn parse_list<F: Clone>(
    text: &str,
    fault: impl Fn(Item<'_>) -> Result<F, String>,
) -> Result<Vec<F>, String> {
    let mut out = Vec::new();
    for text in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (name, times) = match text.split_once('*') {
            Some((name, n)) => match n.trim().parse::<usize>() {
                Ok(n @ 1..=MAX_REPEAT) => (name.trim(), n),
                _ => {
                    return Err(format!(
                        "{text:?}: the repeat count must be 1 to {MAX_REPEAT}"
                    ))
                }
            },
            None => (text, 1),
        };
        let (name, arg) = match name.split_once(':') {
            Some((k, a)) => (k.trim(), Some(a.trim())),
            None => (name, None),
        };
        let lower = name.to_ascii_lowercase();
        let one = fault(Item {
            text,
            name: &lower,
            arg,
        })?;
        if out.len() + times > MAX_TOTAL {
            return Err(format!("at most {MAX_TOTAL} faults in all"));
        }
        out.extend(std::iter::repeat_n(one, times));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::{parse_list, Item};

    fn read(item: Item<'_>) -> Result<(String, Option<u64>), String> {
        match item.name {
            "slow" => Ok(("slow".into(), Some(item.number("seconds")?))),
            "500" if item.arg.is_none() => Ok(("500".into(), None)),
            _ => Err(format!("{:?}: not a fault", item.text)),
        }
    }

    #[test]
    fn lists_are_read_in_order_with_repeats_and_limits() {
        assert_eq!(
            parse_list(" SLOW:2, 500*2 ,", read),
            Ok(vec![
                ("slow".into(), Some(2)),
                ("500".into(), None),
                ("500".into(), None)
            ])
        );
        assert_eq!(
            parse_list("slow", read),
            Err("\"slow\": slow takes seconds, e.g. slow:2".into())
        );
        assert_eq!(
            parse_list("500*0", read),
            Err("\"500*0\": the repeat count must be 1 to 10000".into())
        );
        assert_eq!(
            parse_list("nope", read),
            Err("\"nope\": not a fault".into())
        );
        let many = ["500*10000"; 11].join(",");
        assert_eq!(
            parse_list(&many, read),
            Err("at most 100000 faults in all".into())
        );
    }
}

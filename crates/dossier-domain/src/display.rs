//! How text that came from a tenant or a user is shown to a person: what is shown is what is
//! there. A bidirectional control (which can make `exe.txt` read as `txt.exe`, or hide a
//! command line's tail) is shown as a visible marker such as `⟨U+202E⟩`, and C0 controls,
//! which show as nothing or break a line, are dropped. The stored text is never changed:
//! this is the rule for display only.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Returns whether `c` is a bidirectional formatting control: LRE, RLE, PDF, LRO, RLO
/// (U+202A–U+202E), LRI, RLI, FSI, PDI (U+2066–U+2069), and the marks LRM, RLM (U+200E,
/// U+200F) and ALM (U+061C). See Unicode Standard Annex #9, §2.
#[must_use]
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// Returns whether `c` shows as nothing: whitespace, a control (C0, DEL, C1), a bidi
/// control, a zero-width or joiner character, a soft hyphen, a filler, a variation selector
/// or a tag character.
#[must_use]
pub fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || is_bidi_control(c)
        || matches!(
            c,
            '\u{00AD}'              // soft hyphen
            | '\u{034F}'            // combining grapheme joiner
            | '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}' // Hangul fillers
            | '\u{17B4}' | '\u{17B5}' // Khmer inherent vowels
            | '\u{180B}'..='\u{180F}' // Mongolian variation selectors and vowel separator
            | '\u{200B}'..='\u{200D}' // zero-width space, non-joiner, joiner
            | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
            | '\u{206A}'..='\u{206F}' // deprecated format characters
            | '\u{FE00}'..='\u{FE0F}' // variation selectors
            | '\u{FEFF}'            // zero-width no-break space (BOM)
            | '\u{E0000}'..='\u{E007F}' // tags
            | '\u{E0100}'..='\u{E01EF}' // variation selectors supplement
        )
}

/// Returns whether a person would see anything of `s`: false for a text made only of
/// [`is_invisible`] characters (a comment of zero-width spaces, say).
#[must_use]
pub fn has_visible(s: &str) -> bool {
    s.chars().any(|c| !is_invisible(c))
}

/// Returns `s` as it is to be shown: each bidi control as `⟨U+XXXX⟩`, C0 controls and DEL
/// dropped. Tab, line feed and carriage return are kept: HTML shows them as the space they
/// stand for, and text laid out as it is (raw JSON) needs its line breaks. Text with neither
/// is returned as it is, without copying.
#[must_use]
pub fn for_display(s: &str) -> Cow<'_, str> {
    let changed =
        |c: char| is_bidi_control(c) || (c.is_ascii_control() && !matches!(c, '\t' | '\n' | '\r'));
    if !s.chars().any(changed) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if is_bidi_control(c) {
            let _ = write!(out, "\u{27E8}U+{:04X}\u{27E9}", u32::from(c));
        } else if !changed(c) {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A vendor's machine word as people read it: `not_mitigated`, `notMitigated` and
/// `not-mitigated` all read "Not mitigated". A word in capitals (`EDR`) keeps them; anything
/// that is not such a word (it holds spaces or other marks) is returned as it is.
#[must_use]
pub fn humanize(raw: &str) -> Cow<'_, str> {
    let word_like = !raw.is_empty()
        && raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !word_like {
        return Cow::Borrowed(raw);
    }
    let mut words: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut prev_lower = false;
    for c in raw.chars() {
        if c == '_' || c == '-' {
            words.push(std::mem::take(&mut current));
            prev_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && prev_lower {
            words.push(std::mem::take(&mut current));
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        current.push(c);
    }
    words.push(current);
    let mut out = String::new();
    for w in words.iter().filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        let shouting = w.len() > 1 && w.chars().all(|c| !c.is_ascii_lowercase());
        if shouting {
            out.push_str(w);
        } else if out.is_empty() {
            let mut cs = w.chars();
            if let Some(first) = cs.next() {
                out.push(first.to_ascii_uppercase());
                out.push_str(&cs.as_str().to_ascii_lowercase());
            }
        } else {
            out.push_str(&w.to_ascii_lowercase());
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bidi_controls_are_shown_and_c0_controls_dropped() {
        assert_eq!(
            for_display("invoice\u{202E}fdp.exe"),
            "invoice\u{27E8}U+202E\u{27E9}fdp.exe"
        );
        for c in [
            '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{2066}', '\u{2067}', '\u{2068}',
            '\u{2069}', '\u{200E}', '\u{200F}', '\u{061C}',
        ] {
            let text = format!("a{c}b");
            let shown = for_display(&text);
            assert_eq!(shown, format!("a\u{27E8}U+{:04X}\u{27E9}b", u32::from(c)));
            assert!(!shown.contains(c));
        }
        assert_eq!(for_display("a\u{0}b\u{7}c\u{1b}[31md\u{7f}"), "abc[31md");
        assert_eq!(for_display("line\none\ttab\r"), "line\none\ttab\r");
        assert!(matches!(for_display("plain ünïcode ✓"), Cow::Borrowed(_)));
    }

    #[test]
    fn text_of_invisible_characters_only_has_nothing_to_see() {
        for s in [
            "",
            " \t\n",
            "\u{200B}\u{200C}\u{200D}",
            "\u{202E}\u{2066}",
            "\u{0}\u{1}",
            "\u{FEFF}\u{3164}\u{00A0}",
            "\u{E0041}\u{FE0F}",
        ] {
            assert!(!has_visible(s), "{s:?}");
        }
        for s in ["a", "\u{202E}x", " . ", "\u{200B}✓"] {
            assert!(has_visible(s), "{s:?}");
        }
    }

    #[test]
    fn vendor_words_read_as_words() {
        assert_eq!(humanize("not_mitigated"), "Not mitigated");
        assert_eq!(humanize("notMitigated"), "Not mitigated");
        assert_eq!(humanize("marked-as-benign"), "Marked as benign");
        assert_eq!(humanize("EDR_blocked"), "EDR blocked");
        assert_eq!(humanize("mitigated"), "Mitigated");
        assert_eq!(humanize("Quarantined by policy"), "Quarantined by policy");
        assert_eq!(humanize(""), "");
    }
}

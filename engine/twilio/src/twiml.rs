//! TwiML, the few verbs a call of ours uses: written by the voice webhook, read by the
//! simulator.

use std::fmt::Write as _;

/// One TwiML verb.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verb {
    /// Speak the text.
    Say(String),
    /// Collect one key press while speaking; on a key, POST `Digits` to `action`; on silence
    /// for `timeout` seconds, go on with the next verb.
    Gather {
        /// Where the key goes.
        action: String,
        /// Seconds of silence to wait for.
        timeout: u32,
        /// What is spoken while listening.
        say: Vec<String>,
    },
    /// Fetch TwiML from this URL and go on there.
    Redirect(String),
    /// End the call.
    Hangup,
}

/// Writes a TwiML document.
pub fn render(verbs: &[Verb]) -> String {
    let mut xml = String::from(r#"<?xml version="1.0" encoding="UTF-8"?><Response>"#);
    for verb in verbs {
        match verb {
            Verb::Say(text) => {
                let _ = write!(xml, "<Say>{}</Say>", escape(text));
            }
            Verb::Gather {
                action,
                timeout,
                say,
            } => {
                let _ = write!(
                    xml,
                    r#"<Gather input="dtmf" numDigits="1" method="POST" timeout="{timeout}" action="{}">"#,
                    escape(action)
                );
                for text in say {
                    let _ = write!(xml, "<Say>{}</Say>", escape(text));
                }
                xml.push_str("</Gather>");
            }
            Verb::Redirect(url) => {
                let _ = write!(xml, r#"<Redirect method="POST">{}</Redirect>"#, escape(url));
            }
            Verb::Hangup => xml.push_str("<Hangup/>"),
        }
    }
    xml.push_str("</Response>");
    xml
}

/// Text as XML character data: markup escaped, and characters XML 1.0 cannot carry at all
/// (most control characters, unpaired surrogates' stand-ins U+FFFE and U+FFFF) dropped. One
/// such character in a summary made the whole document unreadable to Twilio, and every call
/// of the loop ended without a key press.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            c if !is_xml_char(c) => {}
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Whether XML 1.0 allows `c` in a document (its `Char` production).
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Text fit to be spoken: every control or format character (newlines, NUL, vertical tabs,
/// bidi marks…) becomes a space, runs of whitespace become one space, and the result is cut
/// at `limit` characters with an ellipsis. Summaries come from templates and cloud platforms
/// and may hold anything; what a phone speaks must stay short and plain.
pub fn speakable(text: &str, limit: usize) -> String {
    let plain = text
        .split(|c: char| c.is_whitespace() || c.is_control() || !is_xml_char(c) || is_format(c));
    let mut out = String::with_capacity(text.len().min(limit.saturating_mul(4)));
    for word in plain.filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    if let Some((cut, _)) = out.char_indices().nth(limit.saturating_sub(1))
        && out[cut..].chars().nth(1).is_some()
    {
        out.truncate(cut);
        out.push('…');
    }
    out
}

/// Unicode's format characters that matter in speech: zero-width and bidi controls.
fn is_format(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{FEFF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speakable_text_is_plain_and_bounded() {
        assert_eq!(
            speakable("  disk\u{0}full\n\ton\u{202E} db-1  ", 100),
            "disk full on db-1"
        );
        assert_eq!(speakable("abcdef", 4), "abc…");
        assert_eq!(speakable("abcd", 4), "abcd");
        assert_eq!(speakable("ab cdef", 4), "ab …");
        assert_eq!(speakable("abcde", 4), "abc…");
        assert_eq!(speakable("\u{0}\u{b}", 10), "");
    }
}

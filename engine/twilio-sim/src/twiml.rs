//! Reading the TwiML a caller's voice webhook answers: only the simulator reads TwiML, so
//! only it links an XML parser.

use tocsin_twilio::twiml::Verb;

/// Reads a TwiML document; verbs other than these are an error naming them.
pub fn parse(xml: &str) -> Result<Vec<Verb>, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| format!("TwiML is not XML: {e}"))?;
    let root = doc.root_element();
    if root.tag_name().name() != "Response" {
        return Err(format!(
            "TwiML's root is <{}>, not <Response>",
            root.tag_name().name()
        ));
    }
    let text = |node: roxmltree::Node| node.text().unwrap_or_default().trim().to_owned();
    root.children()
        .filter(|n| n.is_element())
        .map(|node| match node.tag_name().name() {
            "Say" => Ok(Verb::Say(text(node))),
            "Gather" => Ok(Verb::Gather {
                action: node.attribute("action").unwrap_or_default().to_owned(),
                timeout: node
                    .attribute("timeout")
                    .map_or(Ok(5), str::parse)
                    .map_err(|e| format!("<Gather timeout>: {e}"))?,
                say: node
                    .children()
                    .filter(|n| n.has_tag_name("Say"))
                    .map(text)
                    .collect(),
            }),
            "Redirect" => Ok(Verb::Redirect(text(node))),
            "Hangup" => Ok(Verb::Hangup),
            other => Err(format!("unsupported TwiML verb <{other}>")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tocsin_twilio::twiml::render;

    #[test]
    fn what_is_rendered_parses_back() {
        let verbs = vec![
            Verb::Gather {
                action: "https://x.example/g?a=1&b=2".into(),
                timeout: 6,
                say: vec!["Disk <full> & \"hot\"".into()],
            },
            Verb::Redirect("https://x.example/v?prompt=2".into()),
            Verb::Say("bye".into()),
            Verb::Hangup,
        ];
        assert_eq!(parse(&render(&verbs)).unwrap(), verbs);
    }

    #[test]
    fn characters_xml_cannot_carry_are_dropped_from_the_document() {
        let xml = render(&[Verb::Say("disk\u{0}full\u{b}on\u{FFFE} db-1".into())]);
        assert!(roxmltree::Document::parse(&xml).is_ok(), "{xml}");
        assert_eq!(
            parse(&xml).unwrap(),
            vec![Verb::Say("diskfullon db-1".into())]
        );
    }
}

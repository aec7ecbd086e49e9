//! A minimal XML writer: nested elements, text and attributes, always escaped.
//!
//! Elements nest through closures, so every element opened is closed and the output is
//! well-formed by construction. Element and attribute names are `'static` constants of this
//! crate; every value is escaped.

use crate::text::escape_into;

const INDENT: &str = "  ";

/// Writes one XML document, indented by two spaces per level.
pub(crate) struct XmlWriter {
    out: String,
    depth: usize,
}

impl XmlWriter {
    /// A document starting with its XML declaration.
    pub(crate) fn new() -> Self {
        Self {
            out: String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"),
            depth: 0,
        }
    }

    /// `<name attr="value"...>`, children written by `children`, then `</name>`.
    pub(crate) fn node_with(
        &mut self,
        name: &'static str,
        attrs: &[(&'static str, &str)],
        children: impl FnOnce(&mut Self),
    ) {
        self.open_tag(name, attrs);
        self.out.push_str(">\n");
        self.depth += 1;
        children(self);
        self.depth -= 1;
        self.indent();
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push_str(">\n");
    }

    /// `<name>`, children written by `children`, then `</name>`.
    pub(crate) fn node(&mut self, name: &'static str, children: impl FnOnce(&mut Self)) {
        self.node_with(name, &[], children);
    }

    /// `<name attr="value"...>text</name>` on one line.
    pub(crate) fn leaf_with(
        &mut self,
        name: &'static str,
        attrs: &[(&'static str, &str)],
        text: &str,
    ) {
        self.open_tag(name, attrs);
        self.out.push('>');
        escape_into(&mut self.out, text);
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push_str(">\n");
    }

    /// `<name>text</name>` on one line.
    pub(crate) fn leaf(&mut self, name: &'static str, text: &str) {
        self.leaf_with(name, &[], text);
    }

    /// `<name>text</name>` if there is a text.
    pub(crate) fn leaf_opt(&mut self, name: &'static str, text: Option<&str>) {
        if let Some(text) = text {
            self.leaf(name, text);
        }
    }

    /// The document.
    pub(crate) fn finish(self) -> String {
        debug_assert_eq!(self.depth, 0, "every element is closed by node_with");
        self.out
    }

    fn open_tag(&mut self, name: &'static str, attrs: &[(&'static str, &str)]) {
        self.indent();
        self.out.push('<');
        self.out.push_str(name);
        for (key, value) in attrs {
            self.out.push(' ');
            self.out.push_str(key);
            self.out.push_str("=\"");
            escape_into(&mut self.out, value);
            self.out.push('"');
        }
    }

    fn indent(&mut self) {
        for _ in 0..self.depth {
            self.out.push_str(INDENT);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nests_indents_and_escapes() {
        let mut w = XmlWriter::new();
        w.node_with("Doc", &[("xmlns", "urn:x")], |w| {
            w.leaf_with("Amt", &[("Ccy", "A\"B")], "1 < 2");
            w.node("Empty", |_| {});
            w.leaf_opt("Skipped", None);
        });
        assert_eq!(
            w.finish(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <Doc xmlns=\"urn:x\">\n  \
             <Amt Ccy=\"A&quot;B\">1 &lt; 2</Amt>\n  \
             <Empty>\n  </Empty>\n\
             </Doc>\n"
        );
    }
}

//! SMS length in segments, as carriers count it: a text that fits the GSM-7 alphabet takes
//! 160 septets in one message and 153 per part once split (the rest carries the header that
//! joins the parts); anything else goes as UCS-2, 70 code units alone, 67 per part. A part
//! never ends between the two septets of an extended character, nor between the two
//! halves of a surrogate pair.

/// The most segments one message may take (an inbox reply, an SMS of the phone family).
pub const MAX_SEGMENTS: usize = 10;

/// How a text travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

impl Encoding {
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Gsm7 => "GSM-7",
            Encoding::Ucs2 => "UCS-2",
        }
    }

    /// Units in a single message, and per part of a split one.
    fn limits(self) -> (usize, usize) {
        match self {
            Encoding::Gsm7 => (160, 153),
            Encoding::Ucs2 => (70, 67),
        }
    }
}

/// A text's encoding and how many segments it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    pub encoding: Encoding,
    pub segments: usize,
}

const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// Characters reached through the escape code: two septets each.
const GSM7_EXTENDED: &str = "\u{c}^{}\\[~]|€";

/// Septets a character takes in GSM-7, or `None` outside the alphabet.
fn septets(c: char) -> Option<usize> {
    if GSM7_BASIC.contains(c) {
        Some(1)
    } else if GSM7_EXTENDED.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// Counts `text`'s segments; an empty text is one (empty) message.
pub fn count(text: &str) -> Count {
    let gsm: Option<Vec<usize>> = text.chars().map(septets).collect();
    let (encoding, units) = match gsm {
        Some(units) => (Encoding::Gsm7, units),
        None => (Encoding::Ucs2, text.chars().map(char::len_utf16).collect()),
    };
    let (single, part) = encoding.limits();
    let total: usize = units.iter().sum();
    if total <= single {
        return Count { encoding, segments: 1 };
    }
    let mut segments = 1;
    let mut used = 0;
    for unit in units {
        if used + unit > part {
            segments += 1;
            used = 0;
        }
        used += unit;
    }
    Count { encoding, segments }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm7_fits_160_then_splits_by_153() {
        assert_eq!(
            count(""),
            Count {
                encoding: Encoding::Gsm7,
                segments: 1
            }
        );
        assert_eq!(count(&"a".repeat(160)).segments, 1);
        assert_eq!(count(&"a".repeat(161)).segments, 2);
        assert_eq!(count(&"a".repeat(306)).segments, 2);
        assert_eq!(count(&"a".repeat(307)).segments, 3);
        assert_eq!(count(&"a".repeat(1530)).segments, 10);
    }

    #[test]
    fn extended_characters_take_two_septets_and_stay_whole() {
        assert_eq!(
            count(&"€".repeat(80)),
            Count {
                encoding: Encoding::Gsm7,
                segments: 1
            }
        );
        assert_eq!(count(&"€".repeat(81)).segments, 2);
        // 152 septets, then a two-septet character that must not straddle the parts.
        let text = format!("{}€{}", "a".repeat(152), "a".repeat(10));
        assert_eq!(count(&text).segments, 2);
        let text = format!("{}€{}", "a".repeat(152), "a".repeat(152));
        assert_eq!(count(&text).segments, 3);
    }

    #[test]
    fn anything_else_is_ucs2_70_then_67() {
        assert_eq!(count(&"é".repeat(70)).encoding, Encoding::Gsm7, "é is in GSM-7");
        assert_eq!(
            count(&"ł".repeat(70)),
            Count {
                encoding: Encoding::Ucs2,
                segments: 1
            }
        );
        assert_eq!(count(&"ł".repeat(71)).segments, 2);
        assert_eq!(count(&"ł".repeat(134)).segments, 2);
        assert_eq!(count(&"ł".repeat(135)).segments, 3);
        // An emoji is two code units; 35 of them fill one message.
        assert_eq!(count(&"😀".repeat(35)).segments, 1);
        assert_eq!(count(&"😀".repeat(36)).segments, 2);
    }
}

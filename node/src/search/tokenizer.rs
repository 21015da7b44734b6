//! The tokenizer of the search index: Chinese text as overlapping character bigrams (so any
//! two-character fragment of a name or a title is a term, with no dictionary to keep), other
//! letters and digits as lower-cased words. Positions run on from token to token, so the bigrams
//! of a fragment are consecutive exactly where the fragment occurs (a phrase query finds it).

use tantivy::tokenizer::{Token, TokenStream, Tokenizer};

/// The name the index registers the tokenizer under.
pub const NAME: &str = "cjk_bigram";

/// Chinese (CJK ideographs, the unified blocks and their extensions).
fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{3400}'..='\u{4DBF}' | '\u{4E00}'..='\u{9FFF}' | '\u{F900}'..='\u{FAFF}' | '\u{20000}'..='\u{2FA1F}')
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Cjk,
    Word,
    Other,
}

fn class(c: char) -> Class {
    if is_cjk(c) {
        Class::Cjk
    } else if c.is_alphanumeric() {
        Class::Word
    } else {
        Class::Other
    }
}

/// The tokens of `text`: (byte start, byte end, text).
pub fn tokens(text: &str) -> Vec<(usize, usize, String)> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let end_of = |i: usize| chars.get(i + 1).map_or(text.len(), |(at, _)| *at);
    let mut tokens = Vec::new();
    let mut start = 0;
    while start < chars.len() {
        let kind = class(chars[start].1);
        let mut end = start;
        while end + 1 < chars.len() && class(chars[end + 1].1) == kind {
            end += 1;
        }
        match kind {
            // A lone character is its own term; a run gives each pair of neighbours.
            Class::Cjk if start == end => tokens.push((chars[start].0, end_of(start), chars[start].1.to_string())),
            Class::Cjk => {
                for i in start..end {
                    tokens.push((chars[i].0, end_of(i + 1), text[chars[i].0..end_of(i + 1)].to_owned()));
                }
            }
            Class::Word => tokens.push((chars[start].0, end_of(end), text[chars[start].0..end_of(end)].to_lowercase())),
            Class::Other => {}
        }
        start = end + 1;
    }
    tokens
}

#[derive(Clone, Default)]
pub struct CjkBigramTokenizer;

pub struct CjkBigramStream {
    tokens: std::vec::IntoIter<(usize, usize, String)>,
    token: Token,
}

impl Tokenizer for CjkBigramTokenizer {
    type TokenStream<'a> = CjkBigramStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> CjkBigramStream {
        CjkBigramStream { tokens: tokens(text).into_iter(), token: Token::default() }
    }
}

impl TokenStream for CjkBigramStream {
    fn advance(&mut self) -> bool {
        let Some((from, to, text)) = self.tokens.next() else { return false };
        self.token.offset_from = from;
        self.token.offset_to = to;
        self.token.text = text;
        self.token.position = self.token.position.wrapping_add(1);
        true
    }

    fn token(&self) -> &Token {
        &self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.token
    }
}

#[cfg(test)]
mod tests {
    use super::tokens;

    fn texts(text: &str) -> Vec<String> {
        tokens(text).into_iter().map(|(_, _, text)| text).collect()
    }

    #[test]
    fn chinese_runs_become_bigrams_and_words_lower_case() {
        assert_eq!(
            texts("广州某某食品有限公司"),
            ["广州", "州某", "某某", "某食", "食品", "品有", "有限", "限公", "公司"]
        );
        assert_eq!(texts("ABC超市 (天河店) 2号"), ["abc", "超市", "天河", "河店", "2", "号"]);
        assert_eq!(texts("药"), ["药"]);
        assert!(texts(" ,。!").is_empty());
        for (from, to, text) in tokens("某公司ABC") {
            assert_eq!(&"某公司ABC"[from..to].to_lowercase(), &text);
        }
    }
}

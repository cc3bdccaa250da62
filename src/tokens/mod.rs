//! Token counting: the prompt tokens of a request before it is forwarded (for admission
//! against token limits and budgets) and the completion tokens of a stream whose provider
//! reports no usage. OpenAI models use `tiktoken-rs` (o200k_base for gpt-4o / gpt-4.1 /
//! o-series / gpt-5, cl100k_base for older families); self-hosted models a Hugging Face
//! `tokenizer.json`; anything else a documented estimate.

pub mod completion;
mod prompt;

use std::path::Path;
use std::sync::Arc;

use tiktoken_rs::CoreBPE;
use tiktoken_rs::tokenizer::Tokenizer as TiktokenFamily;

pub use prompt::{ImageCost, prompt_tokens};

/// How one model's text is turned into tokens.
#[derive(Clone)]
pub enum Encoding {
    /// An OpenAI BPE encoding (`o200k_base`, `cl100k_base`).
    Tiktoken {
        name: &'static str,
        bpe: &'static CoreBPE,
        /// Whether the model family uses the older function-definition overheads.
        legacy_tools: bool,
    },
    /// A Hugging Face tokenizer (vLLM and other self-hosted models).
    HuggingFace(Arc<tokenizers::Tokenizer>),
    /// No tokenizer known: one token per four bytes of UTF-8, rounded up.
    Estimate,
}

impl std::fmt::Debug for Encoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Encoding {
    /// The encoding for a model: the configured `tokenizer` when set (`o200k_base`,
    /// `cl100k_base`, `estimate`, or a path to a `tokenizer.json`, relative to `base`),
    /// else the OpenAI family of the upstream model name, else the estimate.
    pub fn for_model(
        setting: Option<&str>,
        upstream_model: &str,
        base: &Path,
    ) -> anyhow::Result<Encoding> {
        match setting {
            Some("o200k_base") => Ok(tiktoken(TiktokenFamily::O200kBase)),
            Some("cl100k_base") => Ok(tiktoken(TiktokenFamily::Cl100kBase)),
            Some("estimate") => Ok(Encoding::Estimate),
            Some(path) if path.ends_with(".json") => {
                let path = base.join(path);
                let tokenizer = tokenizers::Tokenizer::from_file(&path).map_err(|e| {
                    anyhow::anyhow!("tokenizer `{}` cannot be loaded: {e}", path.display())
                })?;
                Ok(Encoding::HuggingFace(Arc::new(tokenizer)))
            }
            Some(other) => anyhow::bail!(
                "unknown tokenizer `{other}`: use o200k_base, cl100k_base, estimate or a path to a tokenizer.json"
            ),
            None => Ok(
                match tiktoken_rs::tokenizer::get_tokenizer(upstream_model) {
                    Some(TiktokenFamily::O200kBase | TiktokenFamily::O200kHarmony) => {
                        tiktoken(TiktokenFamily::O200kBase)
                    }
                    Some(TiktokenFamily::Cl100kBase) => tiktoken(TiktokenFamily::Cl100kBase),
                    _ => Encoding::Estimate,
                },
            ),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Encoding::Tiktoken { name, .. } => name,
            Encoding::HuggingFace(_) => "tokenizer.json",
            Encoding::Estimate => "estimate",
        }
    }

    /// Tokens of a piece of text, special-token text counted as ordinary text (as
    /// providers do with user content).
    pub fn count(&self, text: &str) -> u64 {
        if text.is_empty() {
            return 0;
        }
        match self {
            Encoding::Tiktoken { bpe, .. } => bpe.encode_ordinary(text).len() as u64,
            Encoding::HuggingFace(tokenizer) => tokenizer
                .encode_fast(text, false)
                .map(|e| e.len() as u64)
                .unwrap_or_else(|_| estimate(text)),
            Encoding::Estimate => estimate(text),
        }
    }

    /// The text of token ids, when this encoding knows every id (the estimate knows none).
    /// Bytes that are not UTF-8 on their own (a token splitting a character) become U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> Option<String> {
        match self {
            Encoding::Tiktoken { bpe, .. } => bpe
                .decode_bytes(ids)
                .ok()
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned()),
            Encoding::HuggingFace(tokenizer) => {
                let vocab = tokenizer.get_vocab_size(true);
                if ids.iter().any(|&id| id as usize >= vocab) {
                    return None;
                }
                tokenizer.decode(ids, false).ok()
            }
            Encoding::Estimate => None,
        }
    }

    pub(crate) fn legacy_tools(&self) -> bool {
        matches!(
            self,
            Encoding::Tiktoken {
                legacy_tools: true,
                ..
            }
        )
    }
}

fn tiktoken(family: TiktokenFamily) -> Encoding {
    match family {
        TiktokenFamily::Cl100kBase => Encoding::Tiktoken {
            name: "cl100k_base",
            bpe: tiktoken_rs::cl100k_base_singleton(),
            legacy_tools: true,
        },
        _ => Encoding::Tiktoken {
            name: "o200k_base",
            bpe: tiktoken_rs::o200k_base_singleton(),
            legacy_tools: false,
        },
    }
}

/// What a request may use, in tokens: its prompt counted with the model's tokenizer and
/// the completion tokens it may produce (its output cap per choice — or the model's
/// `default_max_tokens` — times its choices; none for embeddings).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenDemand {
    pub prompt: u64,
    pub completion: u64,
}

impl TokenDemand {
    pub fn total(&self) -> u64 {
        self.prompt.saturating_add(self.completion)
    }
}

/// The token demand of `request` for a model counted by `encoding`.
pub fn demand(
    encoding: &Encoding,
    request: &crate::openai::ApiRequest,
    default_max_tokens: u64,
) -> TokenDemand {
    let completion = match request {
        crate::openai::ApiRequest::Embedding(_) => 0,
        _ => request
            .max_output_tokens()
            .unwrap_or(default_max_tokens)
            .saturating_mul(u64::from(request.choices())),
    };
    TokenDemand {
        prompt: prompt_tokens(encoding, request),
        completion,
    }
}

/// The fallback: one token per four bytes of UTF-8, rounded up (English text averages
/// about four characters per token; CJK text about one token per three-byte character).
pub fn estimate(text: &str) -> u64 {
    (text.len() as u64).div_ceil(4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_encoding_by_model_family() {
        let base = Path::new(".");
        let name = |setting: Option<&str>, model: &str| {
            Encoding::for_model(setting, model, base).unwrap().name()
        };
        assert_eq!(name(None, "gpt-4o-mini"), "o200k_base");
        assert_eq!(name(None, "gpt-4.1"), "o200k_base");
        assert_eq!(name(None, "o3-mini"), "o200k_base");
        assert_eq!(name(None, "gpt-5"), "o200k_base");
        assert_eq!(name(None, "gpt-4"), "cl100k_base");
        assert_eq!(name(None, "gpt-3.5-turbo"), "cl100k_base");
        assert_eq!(name(None, "text-embedding-3-small"), "cl100k_base");
        assert_eq!(name(None, "llama-3.1-8b-instruct"), "estimate");
        assert_eq!(name(Some("cl100k_base"), "gpt-4o"), "cl100k_base");
        assert!(Encoding::for_model(Some("gpt2"), "x", base).is_err());
        assert!(Encoding::for_model(Some("missing/tokenizer.json"), "x", base).is_err());
    }

    #[test]
    fn estimate_rounds_up_per_four_bytes() {
        assert_eq!(estimate(""), 0);
        assert_eq!(estimate("abc"), 1);
        assert_eq!(estimate("abcde"), 2);
        assert_eq!(Encoding::Estimate.count("hello world!"), 3);
    }

    #[test]
    fn counts_ordinary_text_with_tiktoken() {
        let o200k = tiktoken(TiktokenFamily::O200kBase);
        assert_eq!(o200k.count("hello world"), 2);
        // Special-token text in user content is ordinary text.
        assert!(o200k.count("<|endoftext|>") > 1);
    }
}

//! Printed documents (文书): the on-site record (现场检查笔录) as a PDF, set in the configured
//! CJK font (embedded, subset, with its ToUnicode map so the text searches and copies), with the
//! record's digest on every page.
//!
//! `layout` lays out pages; `site_record` writes the record onto them. Rendering is CPU work on
//! files from outside (photos, signatures): it runs on the blocking pool, a few at a time
//! (`RenderPermit`), on images whose size was checked first, and a failure there is an error
//! answer, never a crashed node.

pub mod layout;
pub mod site_record;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::api::ApiError;

/// Documents rendered at once on a node: each holds its photos and the font in memory and
/// keeps a core busy for tens of milliseconds.
pub const RENDERS_AT_ONCE_MAX: usize = 2;

/// What a node needs to print: its font, loaded on first use, and the render permits.
#[derive(Clone)]
pub struct Documents {
    config: config::DocumentsConfig,
    /// The font file's bytes once read (5 MB for WenQuanYi Micro Hei): read again only after
    /// a failed read, so an operator who installs the font needs no restart.
    font: Arc<Mutex<Option<Arc<Vec<u8>>>>>,
    renders: Arc<tokio::sync::Semaphore>,
}

impl Documents {
    pub fn new(config: config::DocumentsConfig) -> Documents {
        Documents { config, font: Arc::default(), renders: Arc::new(tokio::sync::Semaphore::new(RENDERS_AT_ONCE_MAX)) }
    }

    fn font_path(&self) -> &PathBuf {
        &self.config.font
    }

    /// The font's bytes, read once.
    fn font(&self) -> Result<Arc<Vec<u8>>, ApiError> {
        let mut kept = self.font.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(font) = kept.as_ref() {
            return Ok(font.clone());
        }
        let bytes = std::fs::read(self.font_path()).map_err(|e| ApiError::Unavailable {
            code: "document_font_missing",
            message: format!(
                "documents are set in the font {} ({e}); install it (Debian: fonts-wqy-microhei) or name another in [documents] font",
                self.font_path().display()
            ),
        })?;
        let font = Arc::new(bytes);
        *kept = Some(font.clone());
        Ok(font)
    }

    /// Leave to render one document: the font read (so a node without it answers before it
    /// fetches anything) and one of the `RENDERS_AT_ONCE_MAX` places, held until the render
    /// ends even if the caller stops waiting.
    pub async fn permit(&self) -> Result<RenderPermit, ApiError> {
        let font = self.font()?;
        let place =
            self.renders.clone().acquire_owned().await.map_err(|_| ApiError::Internal("renders closed".into()))?;
        Ok(RenderPermit { font, index: self.config.font_index, _place: place })
    }
}

pub struct RenderPermit {
    font: Arc<Vec<u8>>,
    index: u32,
    _place: tokio::sync::OwnedSemaphorePermit,
}

impl RenderPermit {
    /// Runs `render(font bytes, face index)` on the blocking pool; a panic in the PDF or image
    /// code is an error answer. The place is given back when the render ends.
    pub async fn render(
        self,
        render: impl FnOnce(&Arc<Vec<u8>>, u32) -> Result<Vec<u8>, String> + Send + 'static,
    ) -> Result<Vec<u8>, ApiError> {
        let rendered = tokio::task::spawn_blocking(move || render(&self.font, self.index)).await;
        match rendered {
            Ok(Ok(pdf)) => Ok(pdf),
            Ok(Err(message)) => Err(ApiError::Internal(format!("the document could not be rendered: {message}"))),
            Err(_) => Err(ApiError::Internal("the document could not be rendered (the renderer failed)".into())),
        }
    }
}

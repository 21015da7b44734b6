//! A page flow for printed documents: paragraphs wrapped to the measured width of the
//! document's font, rules and images, laid on A4 pages from the top down, a new page wherever
//! the next block does not fit, and every page's footer written once the page count is known.
//!
//! Coordinates are PDF points (1/72 inch) from the page's top left corner, y downwards (as
//! krilla draws); a text's y is its baseline.

use std::sync::Arc;

use krilla::geom::{PathBuilder, Point, Size, Transform};
use krilla::image::Image;
use krilla::page::PageSettings;
use krilla::paint::{Fill, Stroke};
use krilla::text::{Font, TextDirection};
use krilla::{Data, Document};
use skrifa::instance::{LocationRef, Size as FontSize};
use skrifa::{FontRef, MetadataProvider};

/// ISO 216 A4, the paper every bureau prints on.
pub const PAGE_WIDTH_PT: f32 = 595.28;
pub const PAGE_HEIGHT_PT: f32 = 841.89;
/// 20 mm on every side.
pub const MARGIN_PT: f32 = 56.7;
/// Kept free at the foot of every page for its footer.
const FOOTER_BAND_PT: f32 = 28.0;
/// A line's height as a multiple of its font size (CJK text reads better loosely set).
const LINE_SPACING: f32 = 1.5;
/// The footer's font size.
const FOOTER_SIZE_PT: f32 = 8.0;

/// Where a line of CJK text may not start: closing punctuation stays with what it closes
/// (避头点).
const NO_LINE_START: &str = "，。、；：？！）》」』”’,.;:?!)]%";

/// The widest a text block may be.
pub fn text_width() -> f32 {
    PAGE_WIDTH_PT - 2.0 * MARGIN_PT
}

enum Mark {
    Text { at: Point, size: f32, text: String },
    Rule { y: f32 },
    Image { image: Image, at: Point, size: Size },
}

/// The document being laid out: the marks of each page, and where the next block goes.
pub struct Flow<'f> {
    face: FontRef<'f>,
    font: Font,
    units_per_em: f32,
    pages: Vec<Vec<Mark>>,
    /// The top of the next block on the last page.
    y: f32,
}

impl<'f> Flow<'f> {
    /// A flow in face `index` of the font file `data` (shared with the PDF's font, not copied),
    /// or `None` when that is no usable font.
    pub fn new(data: &'f Arc<Vec<u8>>, index: u32) -> Option<Flow<'f>> {
        let font = Font::new(Data::from(data.clone()), index)?;
        let face = FontRef::from_index(data, index).ok()?;
        let units_per_em = f32::from(face.metrics(FontSize::unscaled(), LocationRef::default()).units_per_em);
        (units_per_em > 0.0).then(|| Flow { face, font, units_per_em, pages: vec![Vec::new()], y: MARGIN_PT })
    }

    /// The width of `text` set at `size`, by the font's advances (a missing glyph counts as
    /// the font's `.notdef`, which is what is drawn for it).
    pub fn width(&self, text: &str, size: f32) -> f32 {
        let charmap = self.face.charmap();
        let metrics = self.face.glyph_metrics(FontSize::unscaled(), LocationRef::default());
        let units: f32 = text
            .chars()
            .map(|c| metrics.advance_width(charmap.map(c).unwrap_or_default()).unwrap_or(self.units_per_em))
            .sum();
        units / self.units_per_em * size
    }

    fn bottom() -> f32 {
        PAGE_HEIGHT_PT - MARGIN_PT - FOOTER_BAND_PT
    }

    /// Starts a new page unless `height` more fits on this one.
    pub fn keep(&mut self, height: f32) {
        if self.y + height > Self::bottom() && self.y > MARGIN_PT {
            self.new_page();
        }
    }

    pub fn new_page(&mut self) {
        self.pages.push(Vec::new());
        self.y = MARGIN_PT;
    }

    pub fn space(&mut self, height: f32) {
        self.y += height;
    }

    fn mark(&mut self, mark: Mark) {
        self.pages.last_mut().expect("a flow has a page from the start").push(mark);
    }

    /// One line at `x`, not wrapped (the caller knows it fits).
    fn line_at(&mut self, x: f32, text: &str, size: f32) {
        let height = size * LINE_SPACING;
        self.keep(height);
        // The baseline sits a font size below the line's top, the rest of the spacing under it.
        let baseline = self.y + size;
        self.mark(Mark::Text { at: Point::from_xy(x, baseline), size, text: text.to_owned() });
        self.y += height;
    }

    /// A line centred on the page.
    pub fn centred(&mut self, text: &str, size: f32) {
        let x = (PAGE_WIDTH_PT - self.width(text, size)).max(0.0) / 2.0;
        self.line_at(x, text, size);
    }

    /// A paragraph wrapped to the text width; its wrapped lines start `hanging` further in.
    pub fn paragraph(&mut self, text: &str, size: f32, hanging: f32) {
        for (n, line) in self.wrap(text, size, hanging).into_iter().enumerate() {
            let indent = if n == 0 { 0.0 } else { hanging };
            self.line_at(MARGIN_PT + indent, &line, size);
        }
    }

    /// `label` then `value`, the value's wrapped lines under its first.
    pub fn field(&mut self, label: &str, value: &str, size: f32) {
        let hanging = self.width(label, size).min(text_width() / 2.0);
        self.paragraph(&format!("{label}{value}"), size, hanging);
    }

    /// A thin rule across the text width.
    pub fn rule(&mut self) {
        self.keep(6.0);
        let y = self.y + 3.0;
        self.mark(Mark::Rule { y });
        self.y += 6.0;
    }

    /// `image` scaled to fit `box_width` × `box_height` with its proportions, at the margin,
    /// with `caption` under it; on a new page when it does not fit on this one.
    pub fn image(&mut self, image: Image, box_width: f32, box_height: f32, caption: &str, size: f32) {
        let (pixels_wide, pixels_high) = image.size();
        let scale = (box_width / pixels_wide.max(1) as f32).min(box_height / pixels_high.max(1) as f32);
        let (width, height) = (pixels_wide as f32 * scale, pixels_high as f32 * scale);
        let Some(drawn) = Size::from_wh(width.max(1.0), height.max(1.0)) else { return };
        self.keep(height + size * LINE_SPACING);
        self.mark(Mark::Image { image, at: Point::from_xy(MARGIN_PT, self.y), size: drawn });
        self.y += height + 2.0;
        self.paragraph(caption, size, 0.0);
    }

    /// `text` broken into lines that fit the text width (less `hanging` after the first).
    /// Breaks fall at spaces, between CJK characters (never before closing punctuation), at
    /// explicit newlines, and inside a word only when the word alone is too wide (a hash).
    fn wrap(&self, text: &str, size: f32, hanging: f32) -> Vec<String> {
        let mut lines = Vec::new();
        for source_line in text.split('\n') {
            let mut line = String::new();
            let mut width = 0.0;
            // Where in `line` it may be broken, and the width up to there.
            let mut last_break: Option<(usize, f32)> = None;
            let mut previous: Option<char> = None;
            for c in source_line.chars() {
                let available = if lines.is_empty() { text_width() } else { text_width() - hanging };
                if previous.is_some_and(|p| breaks_between(p, c)) {
                    last_break = Some((line.len(), width));
                }
                let advance = self.width(c.encode_utf8(&mut [0; 4]), size);
                // At most twice: at the last break, then (when what follows the break still
                // does not leave room for this character) before it.
                while width + advance > available && !line.is_empty() {
                    match last_break.take().filter(|(at, _)| *at > 0) {
                        Some((at, _)) => {
                            let rest = line.split_off(at);
                            lines.push(line.trim_end().to_owned());
                            line = rest.trim_start().to_owned();
                        }
                        None => lines.push(std::mem::take(&mut line)),
                    }
                    width = self.width(&line, size);
                }
                line.push(c);
                width += advance;
                previous = Some(c);
            }
            lines.push(line);
        }
        lines
    }

    /// The PDF: every page's marks, then its footer from `footer(page, pages)` (both from 1).
    pub fn finish(self, mut document: Document, footer: impl Fn(usize, usize) -> String) -> Result<Vec<u8>, String> {
        let pages = self.pages.len();
        for (n, marks) in self.pages.iter().enumerate() {
            let settings = PageSettings::from_wh(PAGE_WIDTH_PT, PAGE_HEIGHT_PT).expect("A4 is a page size");
            let mut page = document.start_page_with(settings);
            let mut surface = page.surface();
            let draw_text = |surface: &mut krilla::surface::Surface<'_>, at: Point, size: f32, text: &str| {
                surface.draw_text(at, self.font.clone(), size, text, false, TextDirection::Auto);
            };
            surface.set_fill(Some(Fill::default()));
            for mark in marks {
                match mark {
                    Mark::Text { at, size, text } => draw_text(&mut surface, *at, *size, text),
                    Mark::Rule { y } => {
                        let mut path = PathBuilder::new();
                        path.move_to(MARGIN_PT, *y);
                        path.line_to(PAGE_WIDTH_PT - MARGIN_PT, *y);
                        if let Some(path) = path.finish() {
                            surface.set_fill(None);
                            surface.set_stroke(Some(Stroke { width: 0.5, ..Stroke::default() }));
                            surface.draw_path(&path);
                            surface.set_stroke(None);
                            surface.set_fill(Some(Fill::default()));
                        }
                    }
                    Mark::Image { image, at, size } => {
                        surface.push_transform(&Transform::from_translate(at.x, at.y));
                        surface.draw_image(image.clone(), *size);
                        surface.pop();
                    }
                }
            }
            let footer = footer(n + 1, pages);
            let footer_y = PAGE_HEIGHT_PT - MARGIN_PT;
            draw_text(&mut surface, Point::from_xy(MARGIN_PT, footer_y), FOOTER_SIZE_PT, &footer);
            surface.finish();
            page.finish();
        }
        document.finish().map_err(|e| format!("{e:?}"))
    }
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x2E80..=0x9FFF | 0xF900..=0xFAFF | 0xFF00..=0xFFEF | 0x20000..=0x3FFFF)
}

/// Whether a line may break between `before` and `after`.
fn breaks_between(before: char, after: char) -> bool {
    if NO_LINE_START.contains(after) {
        return false;
    }
    before == ' ' || is_cjk(before) || is_cjk(after)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_break_between_cjk_characters_and_at_spaces_never_before_closing_punctuation() {
        assert!(breaks_between('检', '查'));
        assert!(breaks_between(' ', 'a'));
        assert!(!breaks_between('a', 'b'), "inside a Latin word");
        assert!(!breaks_between('查', '。'), "a full stop stays with its sentence");
        assert!(!breaks_between('查', '，'));
    }
}

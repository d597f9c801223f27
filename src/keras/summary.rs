//! `model.summary()`: Keras 3's table, as it prints when the output is not a terminal.

use crate::keras::layer::{format_shape, Layer, Shape, Weight};

/// Inner widths of the three columns (padding included), as Keras 3 draws them.
const WIDTHS: [usize; 3] = [33, 24, 15];

/// Keras's readable size: `37.54 KB`.
fn readable_size(bytes: f64) -> String {
    let mut size = bytes;
    for unit in ["B", "KB", "MB", "GB", "TB"] {
        if size / 1024.0 < 1.0 {
            return format!("{size:.2} {unit}");
        }
        size /= 1024.0;
    }
    format!("{size:.2} PB")
}

fn rule(left: char, fill: char, mid: char, right: char) -> String {
    let parts: Vec<String> = WIDTHS.iter().map(|&w| fill.to_string().repeat(w)).collect();
    format!("{left}{}{right}\n", parts.join(&mid.to_string()))
}

fn row(sep: char, cells: [&str; 3]) -> String {
    format!(
        "{sep} {:<a$} {sep} {:<b$} {sep} {:>c$} {sep}\n",
        cells[0],
        cells[1],
        cells[2],
        a = WIDTHS[0] - 2,
        b = WIDTHS[1] - 2,
        c = WIDTHS[2] - 2
    )
}

/// `text` in lines of at most `width` characters, broken at spaces as Keras's table
/// (rich) breaks a long `name (Type)`; a word longer than a line is cut.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let sep = usize::from(!line.is_empty());
        if !line.is_empty() && line.chars().count() + sep + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
        while line.chars().count() > width {
            let head: String = line.chars().take(width).collect();
            line = line.chars().skip(width).collect();
            lines.push(head);
        }
    }
    lines.push(line);
    lines
}

/// Formats a parameter count with thousands separators: `8,320`.
fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One row of the table: `name (Type)`, the output shape (`None` before build) and the
/// parameter count (`None` when unbuilt).
pub(crate) struct Row {
    pub title: String,
    pub shape: Option<Shape>,
    pub params: Option<usize>,
}

impl Row {
    /// The row of `layer`, whose output shape is `shape` once built.
    pub fn of(layer: &dyn Layer, shape: Option<Shape>) -> Row {
        Row {
            title: format!("{} ({})", layer.name(), layer.class_name()),
            shape,
            params: layer.built().then(|| layer.count_params()),
        }
    }
}

/// The summary of a model: one row per layer, then the parameter totals of `weights`;
/// `optimizer` is the optimizer's variable count and bytes once compiled.
pub(crate) fn summary(
    name: &str,
    rows: &[Row],
    weights: &[Weight],
    optimizer: Option<(usize, usize)>,
) -> String {
    let mut s = format!("Model: \"{name}\"\n");
    s += &rule('┏', '━', '┳', '┓');
    s += &row('┃', ["Layer (type)", "Output Shape", "Param #"]);
    s += &rule('┡', '━', '╇', '┩');
    for (i, r) in rows.iter().enumerate() {
        let shape = r
            .shape
            .as_ref()
            .map_or("?".to_string(), |s| format_shape(s));
        let params = r
            .params
            .map_or_else(|| "0 (unbuilt)".to_string(), thousands);
        let lines = wrap(&r.title, WIDTHS[0] - 2);
        s += &row('│', [&lines[0], &shape, &params]);
        for more in &lines[1..] {
            s += &row('│', [more, "", ""]);
        }
        if i + 1 < rows.len() {
            s += &rule('├', '─', '┼', '┤');
        }
    }
    s += &rule('└', '─', '┴', '┘');
    let (mut trainable, mut frozen) = (0, 0);
    for w in weights {
        if w.trainable {
            trainable += w.size();
        } else {
            frozen += w.size();
        }
    }
    let (opt, opt_bytes) = optimizer.unwrap_or((0, 0));
    let line = |label: &str, n: usize, bytes: usize| {
        format!(
            " {label}: {} ({})\n",
            thousands(n),
            readable_size(bytes as f64)
        )
    };
    let total = trainable + frozen + opt;
    s += &line("Total params", total, (trainable + frozen) * 4 + opt_bytes);
    s += &line("Trainable params", trainable, trainable * 4);
    s += &line("Non-trainable params", frozen, frozen * 4);
    if optimizer.is_some() {
        s += &line("Optimizer params", opt, opt_bytes);
    }
    s
}

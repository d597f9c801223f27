//! `model.summary()`: Keras 3's table, as it prints when the output is not a terminal.

use crate::keras::layer::{format_shape, Layer, Shape, Weight};

/// Inner widths of the columns (padding included) as Keras 3 draws them on an 80-column
/// output that is not a terminal: three columns, or four with "Connected to" (a
/// functional model that is not a plain chain).
const WIDTHS: [usize; 3] = [33, 24, 15];
const CONNECTED_WIDTHS: [usize; 4] = [21, 19, 12, 19];

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

fn rule(widths: &[usize], left: char, fill: char, mid: char, right: char) -> String {
    let parts: Vec<String> = widths.iter().map(|&w| fill.to_string().repeat(w)).collect();
    format!("{left}{}{right}\n", parts.join(&mid.to_string()))
}

/// One line of cells; the third (the parameter count) is right-aligned.
fn row(widths: &[usize], sep: char, cells: &[&str]) -> String {
    let mut line = String::new();
    for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
        let w = w - 2;
        if i == 2 {
            line += &format!("{sep} {cell:>w$} ");
        } else {
            line += &format!("{sep} {cell:<w$} ");
        }
    }
    format!("{line}{sep}\n")
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

/// One row of the table: `name (Type)`, the output shape (`None` before build), the
/// parameter count (`None` when unbuilt) and, for a functional model that is not a plain
/// chain, what the layer is connected to (`dense[0][0], input_b[0][0]`, `-` for inputs).
pub(crate) struct Row {
    pub title: String,
    pub shape: Option<Shape>,
    pub params: Option<usize>,
    pub connected: Option<String>,
}

impl Row {
    /// The row of `layer`, whose output shape is `shape` once built.
    pub fn of(layer: &dyn Layer, shape: Option<Shape>) -> Row {
        Row {
            title: format!("{} ({})", layer.name(), layer.class_name()),
            shape,
            params: layer.built().then(|| layer.count_params()),
            connected: None,
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
    let connected = rows.iter().any(|r| r.connected.is_some());
    let (widths, header): (&[usize], &[&str]) = if connected {
        (
            &CONNECTED_WIDTHS,
            &["Layer (type)", "Output Shape", "Param #", "Connected to"],
        )
    } else {
        (&WIDTHS, &["Layer (type)", "Output Shape", "Param #"])
    };
    s += &rule(widths, '┏', '━', '┳', '┓');
    s += &row(widths, '┃', header);
    s += &rule(widths, '┡', '━', '╇', '┩');
    for (i, r) in rows.iter().enumerate() {
        let shape = r
            .shape
            .as_ref()
            .map_or("?".to_string(), |s| format_shape(s));
        let params = r
            .params
            .map_or_else(|| "0 (unbuilt)".to_string(), thousands);
        let cells = [
            r.title.as_str(),
            &shape,
            &params,
            r.connected.as_deref().unwrap_or("-"),
        ];
        // Each cell broken into lines to fit its column; the row is as tall as the
        // tallest.
        let lines: Vec<Vec<String>> = cells[..widths.len()]
            .iter()
            .zip(widths)
            .map(|(c, w)| wrap(c, w - 2))
            .collect();
        let height = lines.iter().map(Vec::len).max().unwrap_or(1);
        for k in 0..height {
            let line: Vec<&str> = lines
                .iter()
                .map(|l| l.get(k).map_or("", String::as_str))
                .collect();
            s += &row(widths, '│', &line);
        }
        if i + 1 < rows.len() {
            s += &rule(widths, '├', '─', '┼', '┤');
        }
    }
    s += &rule(widths, '└', '─', '┴', '┘');
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

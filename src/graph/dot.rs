//! Graphviz DOT export of a graph, for a look at it without TensorBoard
//! (`dot -Tsvg graph.dot -o graph.svg`).

use super::{Graph, NodeId};
use std::collections::BTreeMap;
use std::fmt::Write;

/// The graph in Graphviz DOT: one box per node labelled with its name and op type, name
/// scopes as nested clusters, data edges labelled with the tensor's shape and dtype
/// (`[?,64] float32`), control dependencies dashed.
pub fn to_dot(g: &Graph) -> String {
    // Nodes grouped by their name scope ("a/b" for "a/b/MatMul"); the root scope is "".
    let mut by_scope: BTreeMap<&str, Vec<NodeId>> = BTreeMap::new();
    for (id, node) in g.nodes() {
        let scope = node.name().rsplit_once('/').map_or("", |(s, _)| s);
        by_scope.entry(scope).or_default().push(id);
        // Make every enclosing scope exist, so each cluster nests in its parent.
        let mut s = scope;
        while let Some((parent, _)) = s.rsplit_once('/') {
            by_scope.entry(parent).or_default();
            s = parent;
        }
    }
    let mut out = String::from(
        "digraph G {\n  rankdir=TB;\n  node [shape=box, style=rounded, fontsize=10];\n  \
         edge [fontsize=8];\n",
    );
    write_scope(g, &by_scope, "", 1, &mut out);
    for (id, node) in g.nodes() {
        for &input in node.inputs() {
            let _ = writeln!(
                out,
                "  {} -> {} [label={}];",
                quote(g.node(input.node).name()),
                quote(node.name()),
                quote(&g.spec(input).to_string())
            );
        }
        for &c in node.control_inputs() {
            let _ = writeln!(
                out,
                "  {} -> {} [style=dashed];",
                quote(g.node(c).name()),
                quote(g.node(id).name())
            );
        }
    }
    out.push_str("}\n");
    out
}

/// Writes the nodes of `scope` and, as nested clusters, its child scopes.
fn write_scope(
    g: &Graph,
    by_scope: &BTreeMap<&str, Vec<NodeId>>,
    scope: &str,
    depth: usize,
    out: &mut String,
) {
    let pad = "  ".repeat(depth);
    for &id in by_scope.get(scope).into_iter().flatten() {
        let node = g.node(id);
        // The name within its scope, and the op type where it differs ("kernel\nVariableV2").
        let short = node.name().rsplit('/').next().unwrap_or_default();
        let label = match node.op_type() {
            op if op == short => op.to_string(),
            op => format!("{short}\n{op}"),
        };
        let _ = writeln!(
            out,
            "{pad}{} [label={}];",
            quote(node.name()),
            quote(&label)
        );
    }
    let children = by_scope.keys().filter(|s| {
        !s.is_empty()
            && match scope {
                "" => !s.contains('/'),
                _ => s
                    .strip_prefix(scope)
                    .and_then(|r| r.strip_prefix('/'))
                    .is_some_and(|r| !r.contains('/')),
            }
    });
    for child in children {
        let _ = writeln!(
            out,
            "{pad}subgraph {} {{",
            quote(&format!("cluster_{child}"))
        );
        let _ = writeln!(
            out,
            "{pad}  label={}; style=rounded; color=gray;",
            quote(child.rsplit('/').next().unwrap_or_default())
        );
        write_scope(g, by_scope, child, depth + 1, out);
        let _ = writeln!(out, "{pad}}}");
    }
}

/// A DOT string literal.
fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                q.push('\\');
                q.push(c);
            }
            '\n' => q.push_str("\\n"),
            _ => q.push(c),
        }
    }
    q.push('"');
    q
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DType, Tensor};

    #[test]
    fn scopes_become_nested_clusters_and_edges_carry_specs() {
        let mut g = Graph::new();
        let x = g.placeholder(DType::Float32, [None, Some(3)], "x").unwrap();
        let w = g.constant(Tensor::from([[1.0f32], [2.0], [3.0]])).unwrap();
        let y = g
            .name_scope("dense", |g| g.name_scope("inner", |g| g.matmul(x, w)))
            .unwrap();
        let z = g
            .control_dependencies(&[y.node], |g| g.constant(Tensor::scalar(1.0f32)))
            .unwrap();
        let dot = to_dot(&g);
        assert!(dot.contains("\"x\" [label=\"x\\nPlaceholder\"];"), "{dot}");
        assert!(dot.starts_with("digraph G {"), "{dot}");
        let dense = dot
            .find("subgraph \"cluster_dense\" {")
            .expect("dense cluster");
        let inner = dot
            .find("subgraph \"cluster_dense/inner\" {")
            .expect("inner cluster");
        assert!(dense < inner, "{dot}");
        assert!(
            dot.contains("\"dense/inner/MatMul\" [label=\"MatMul\"];"),
            "{dot}"
        );
        assert!(
            dot.contains("\"x\" -> \"dense/inner/MatMul\" [label=\"[?,3] float32\"];"),
            "{dot}"
        );
        let cname = g.node(z.node).name().to_string();
        assert!(
            dot.contains(&format!(
                "\"dense/inner/MatMul\" -> \"{cname}\" [style=dashed];"
            )),
            "{dot}"
        );
        assert_eq!(dot.matches('{').count(), dot.matches('}').count());
        assert_eq!(quote("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
    }
}

//! The documents are part of the product: every link in the README and `docs/` leads somewhere (a file of
//! the repository, and a heading of it when the link names one), every repository path they quote in
//! backticks exists, and nothing tracked points outside the repository (a clone has nothing beside it).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("the repository root")
}

fn documents(root: &Path) -> Vec<PathBuf> {
    let mut docs = vec![root.join("README.md")];
    let mut found: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .map(|e| e.expect("a docs/ entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    found.sort();
    docs.extend(found);
    docs
}

/// GitHub's anchor for a heading: lower case, punctuation dropped but for `-` and `_`, spaces as `-`.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn anchors(text: &str) -> BTreeSet<String> {
    let mut in_code = false;
    let mut found = BTreeSet::new();
    for line in text.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        } else if !in_code && line.starts_with('#') {
            found.insert(anchor(line.trim_start_matches('#')));
        }
    }
    found
}

/// The targets of the document's Markdown links `[text](target)`, outside code blocks.
fn links(text: &str) -> Vec<String> {
    let mut in_code = false;
    let mut found = Vec::new();
    for line in text.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            found.push(after[..end].to_owned());
            rest = &after[end..];
        }
    }
    found
}

/// Repository paths quoted in backticks (`shared/core/src/ports.rs`), without placeholders or globs.
fn quoted_paths(text: &str) -> Vec<String> {
    const TOP: [&str; 13] = [
        "shared/",
        "functions/",
        "cli/",
        "infra/",
        "localstack/",
        "scripts/",
        "function-host/",
        "tests/",
        "bench/",
        "docs/",
        "sim/",
        "examples/",
        ".config/",
    ];
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|quoted| TOP.iter().any(|top| quoted.starts_with(top)))
        .filter(|quoted| !quoted.contains(['*', '<', '{', ' ', '$', '…']))
        .map(|quoted| quoted.trim_end_matches('/').to_owned())
        .collect()
}

#[test]
fn every_link_in_the_readme_and_docs_leads_somewhere() {
    let root = root();
    let mut broken = Vec::new();
    for doc in documents(&root) {
        let text = std::fs::read_to_string(&doc).expect("a readable document");
        let dir = doc.parent().expect("a folder");
        for link in links(&text) {
            if link.starts_with("http://") || link.starts_with("https://") {
                continue;
            }
            let (path, fragment) = link.split_once('#').unwrap_or((&link, ""));
            let target = if path.is_empty() { doc.clone() } else { dir.join(path) };
            if !target.exists() {
                broken.push(format!("{}: {link} (no such file)", doc.display()));
                continue;
            }
            if !fragment.is_empty() {
                let target_text = std::fs::read_to_string(&target).unwrap_or_default();
                if !anchors(&target_text).contains(fragment) {
                    broken.push(format!("{}: {link} (no such heading)", doc.display()));
                }
            }
        }
        for path in quoted_paths(&text) {
            if !root.join(&path).exists() {
                broken.push(format!("{}: `{path}` (no such path in the repository)", doc.display()));
            }
        }
    }
    assert!(broken.is_empty(), "broken links and paths:\n{}", broken.join("\n"));
}

#[test]
fn nothing_tracked_points_outside_the_repository() {
    let root = root();
    let listed =
        std::process::Command::new("git").args(["ls-files", "-z"]).current_dir(&root).output().expect("git ls-files");
    assert!(listed.status.success(), "git ls-files failed");
    // Spelled in pieces, so that this file holds neither and is checked like every other.
    let outside = [concat!("..", "/shared/"), concat!("ARCHITECTURE", ".md")];
    let mut found = Vec::new();
    for name in String::from_utf8_lossy(&listed.stdout).split('\0').filter(|n| !n.is_empty()) {
        let Ok(text) = std::fs::read_to_string(root.join(name)) else { continue };
        for (number, line) in text.lines().enumerate() {
            if outside.iter().any(|o| line.contains(o)) {
                found.push(format!("{name}:{}: {}", number + 1, line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "tracked files refer outside the repository:\n{}", found.join("\n"));
}

#[test]
fn the_link_reader_finds_links_anchors_and_paths() {
    let text = "# A heading, with `code`\n[x](docs/a.md#b-c) and `shared/core/src/lib.rs` and `shared/<x>`\n```\n[no](code)\n```\n";
    assert_eq!(links(text), vec!["docs/a.md#b-c".to_owned()]);
    assert!(anchors(text).contains("a-heading-with-code"));
    assert_eq!(quoted_paths(text), vec!["shared/core/src/lib.rs".to_owned()]);
}

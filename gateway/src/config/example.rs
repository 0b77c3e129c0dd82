//! Renders `config/gateway.example.toml` from the configuration's own source: the doc
//! comment of every section and field (read through its JSON schema) and the value of
//! `Config::default()`. `gateway config-doc` prints it; a test keeps the committed file
//! equal to it, so the example cannot drift from the code.

use serde_json::{Map, Value as Json};

use super::Config;

const WIDTH: usize = 88;

/// The example configuration file, every value at its default.
///
/// The order of sections and fields is the declaration order (as the TOML serializer
/// writes `Config::default()`); the comments are the doc comments (from the schema).
pub fn render() -> String {
    let schema = schemars::schema_for!(Config);
    let schema = schema.as_value();
    let defs = schema.get("$defs").cloned().unwrap_or(Json::Null);
    let top = schema.get("properties").and_then(Json::as_object).cloned().unwrap_or_default();
    let defaults = toml::to_string(&Config::default()).unwrap_or_default();
    let mut out = String::from(HEADER);
    // the fields of the section being written, and those not written yet (unset options)
    let mut fields = top.clone();
    let mut pending: Vec<String> =
        fields.keys().filter(|k| section_def(&fields[*k], &defs).is_none()).cloned().collect();
    let mut section = String::new();
    for line in defaults.lines() {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            finish(&mut out, &section, &fields, &pending, &defs);
            let def = top.get(name).and_then(|f| section_def(f, &defs)).unwrap_or(Json::Null);
            out.push_str(&format!("\n[{name}]\n"));
            comment(&mut out, &description(&def));
            out.push('\n');
            fields = def.get("properties").and_then(Json::as_object).cloned().unwrap_or_default();
            pending = fields.keys().cloned().collect();
            section = name.to_owned();
            continue;
        }
        let Some((key, _)) = line.split_once(" = ") else { continue };
        let Some(field) = fields.get(key) else { continue };
        pending.retain(|p| p != key);
        if array_item_def(field, &defs).is_some() {
            pending.push(key.to_owned()); // an example block at the end of the section
            continue;
        }
        if section.is_empty() {
            out.push('\n');
        }
        comment(&mut out, &description(field));
        out.push_str(line);
        out.push('\n');
    }
    finish(&mut out, &section, &fields, &pending, &defs);
    out
}

/// The fields of a section that the defaults leave unset (commented placeholders) and its
/// arrays of tables (a commented example entry).
fn finish(out: &mut String, section: &str, fields: &Map<String, Json>, pending: &[String], defs: &Json) {
    for key in pending {
        let Some(field) = fields.get(key) else { continue };
        if section.is_empty() {
            out.push('\n');
        }
        comment(out, &description(field));
        match array_item_def(field, defs) {
            Some(item) => {
                out.push_str(&format!("# [[{section}.{key}]]\n"));
                for (name, f) in item.get("properties").and_then(Json::as_object).into_iter().flatten() {
                    comment(out, &description(f));
                    out.push_str(&format!("# {name} = \"…\"\n"));
                }
            }
            None => out.push_str(&format!("# {key} = \"…\"    (unset by default)\n")),
        }
    }
}

const HEADER: &str = "\
# OFD gateway — example configuration, generated from the code (`gateway config-doc`);
# every value shown is the default. Delete what you do not change.
# Environment variables override the file: GATEWAY_<SECTION>__<FIELD>, e.g.
# GATEWAY_LISTEN__TCP=0.0.0.0:7777, GATEWAY_LIMITS__IDLE_TIMEOUT=60s,
# GATEWAY_DATA_DIR=/var/lib/ofd-gateway. Command-line flags (--data-dir, --tcp-listen,
# ...) override both. Validate with:  gateway --config gateway.toml --check-config
";

/// The definition a field refers to when it is a section (an object with properties).
fn section_def(field: &Json, defs: &Json) -> Option<Json> {
    let name = field.get("$ref")?.as_str()?.strip_prefix("#/$defs/")?;
    let def = defs.get(name)?;
    def.get("properties").is_some().then(|| def.clone())
}

/// The item definition of an array-of-objects field.
fn array_item_def(field: &Json, defs: &Json) -> Option<Json> {
    let items = field.get("items")?;
    section_def(items, defs)
}

fn description(v: &Json) -> String {
    v.get("description").and_then(Json::as_str).unwrap_or("").to_owned()
}

/// `text` as `# ` lines wrapped at [`WIDTH`] (paragraphs kept).
fn comment(out: &mut String, text: &str) {
    for para in text.split("\n\n") {
        let mut line = String::from("#");
        for word in para.split_whitespace() {
            if line.len() + 1 + word.len() > WIDTH && line.len() > 1 {
                out.push_str(&line);
                out.push('\n');
                line = String::from("#");
            }
            line.push(' ');
            line.push_str(word);
        }
        if line.len() > 1 {
            out.push_str(&line);
            out.push('\n');
        }
    }
}

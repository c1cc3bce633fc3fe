//! Handlebars rendering of catalog strings over `{release, module, namespace, chart}`:
//! strict mode (unknown variables are errors), no HTML escaping.

use handlebars::Handlebars;
use serde::Serialize;
use serde_json::Value;

/// Variables available to catalog templates.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TemplateContext {
    /// Release name.
    pub release: String,
    /// Module name (absent for release-wide objects such as the guard).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    /// Release namespace, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Chart name, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chart: Option<String>,
}

fn engine() -> Handlebars<'static> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    hb.register_escape_fn(handlebars::no_escape);
    hb
}

/// Check that `template` compiles.
pub fn check(template: &str) -> Result<(), String> {
    if !template.contains("{{") {
        return Ok(());
    }
    handlebars::Template::compile(template)
        .map(|_| ())
        .map_err(|e| format!("invalid template {template:?}: {e}"))
}

/// Render one string. Strings without `{{` are returned unchanged.
pub fn render(template: &str, ctx: &TemplateContext) -> Result<String, String> {
    if !template.contains("{{") {
        return Ok(template.to_string());
    }
    engine()
        .render_template(template, ctx)
        .map_err(|e| format!("template {template:?}: {}", e.reason()))
}

/// Render every string inside a JSON value (keys and values), recursively.
pub fn render_value(value: &Value, ctx: &TemplateContext) -> Result<Value, String> {
    Ok(match value {
        Value::String(s) => Value::String(render(s, ctx)?),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| render_value(v, ctx))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => {
            let mut out = serde_json::Map::with_capacity(map.len());
            for (k, v) in map {
                out.insert(render(k, ctx)?, render_value(v, ctx)?);
            }
            Value::Object(out)
        }
        other => other.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> TemplateContext {
        TemplateContext {
            release: "shop".into(),
            module: Some("orders-db".into()),
            namespace: Some("prod".into()),
            chart: None,
        }
    }

    #[test]
    fn renders_without_html_escaping() {
        assert_eq!(
            render("{{release}}-{{module}}", &ctx()).unwrap(),
            "shop-orders-db"
        );
        assert_eq!(render("a&b<{{namespace}}>", &ctx()).unwrap(), "a&b<prod>");
        assert_eq!(render("plain", &ctx()).unwrap(), "plain");
    }

    #[test]
    fn strict_mode_rejects_unknown_and_missing_variables() {
        assert!(render("{{relase}}", &ctx()).is_err());
        assert!(render("{{chart}}", &ctx()).is_err());
        assert!(check("{{#if}}").is_err());
    }

    #[test]
    fn renders_nested_values() {
        let v = serde_json::json!({"labels": {"team": "{{release}}"}, "n": 1, "l": ["{{module}}"]});
        let r = render_value(&v, &ctx()).unwrap();
        assert_eq!(
            r,
            serde_json::json!({"labels": {"team": "shop"}, "n": 1, "l": ["orders-db"]})
        );
    }
}

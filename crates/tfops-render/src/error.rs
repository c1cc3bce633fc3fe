//! Errors of the post-renderer: every error names the chart source file, the document and the
//! field it is about, so a user can find the mistake in their chart.

use std::fmt;

/// What went wrong, broadly (useful for tests and exit-code decisions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Input is larger than `Limits::max_input_bytes`.
    Oversize,
    /// Input is not UTF-8.
    Encoding,
    /// A document is not valid YAML (or exceeds the YAML budget: nesting, aliases…).
    Yaml,
    /// A `TerraformModule` declaration is invalid (unknown/missing/conflicting fields).
    Intent,
    /// A `Terraform` CR already in the chart cannot be adopted.
    Adoption,
    /// `dependsOn` names an unknown module, itself, or forms a cycle.
    Dependency,
    /// Two modules share a name, or two generated objects would share a name.
    Duplicate,
    /// A name (pattern result or declared) is not a valid Kubernetes name.
    Name,
    /// A catalog template failed to render (strict mode: unknown variable, syntax).
    Template,
    /// The release name could not be determined.
    Release,
    /// The catalog configuration is invalid.
    Config,
}

/// A post-render failure. `Display` reads
/// `<source file>: <Kind> "<name>": <field>: <message>`, omitting the parts that are unknown.
#[derive(Debug, Clone, thiserror::Error)]
pub struct RenderError {
    kind: ErrorKind,
    source_file: Option<String>,
    document: Option<String>,
    field: Option<String>,
    message: String,
}

impl RenderError {
    /// A new error of `kind` with `message`; add context with the `with_*` builders.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        RenderError {
            kind,
            source_file: None,
            document: None,
            field: None,
            message: message.into(),
        }
    }

    /// Set the chart source file (Helm 4 filename annotation or Helm 3 `# Source:`).
    pub fn with_source_file(mut self, file: Option<&str>) -> Self {
        if self.source_file.is_none() {
            self.source_file = file.map(str::to_string);
        }
        self
    }

    /// Set the document description, e.g. `TerraformModule "orders-db"`.
    pub fn with_document(mut self, document: impl Into<String>) -> Self {
        if self.document.is_none() {
            self.document = Some(document.into());
        }
        self
    }

    /// Set the field path, e.g. `spec.source`.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        let field = field.into();
        if self.field.is_none() && !field.is_empty() {
            self.field = Some(field);
        }
        self
    }

    /// The broad category of the error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The chart source file the failing document came from, when known.
    pub fn source_file(&self) -> Option<&str> {
        self.source_file.as_deref()
    }

    /// The failing document, e.g. `TerraformModule "orders-db"`, when known.
    pub fn document(&self) -> Option<&str> {
        self.document.as_deref()
    }

    /// The field path inside the document, e.g. `spec.source`, when known.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// The bare message without location.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.source_file {
            write!(f, "{file}: ")?;
        }
        if let Some(doc) = &self.document {
            write!(f, "{doc}: ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// An invalid catalog configuration: names the config origin (file) and the field.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{origin}: {}{message}", field.as_deref().map(|f| format!("{f}: ")).unwrap_or_default())]
pub struct ConfigError {
    /// Where the configuration came from (file path or a label).
    pub origin: String,
    /// Field path inside the configuration, when known.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl From<ConfigError> for RenderError {
    fn from(e: ConfigError) -> Self {
        let mut r =
            RenderError::new(ErrorKind::Config, e.message).with_source_file(Some(&e.origin));
        if let Some(f) = e.field {
            r = r.with_field(f);
        }
        r
    }
}

//! Template components: every uploaded or built-in component, and which one each template
//! id runs.

use super::Result;
use tocsin_sdk::TemplateInfo;
use tocsin_sdk::time::Timestamp;

/// The component a template id currently runs.
#[derive(Debug, Clone)]
pub struct StoredTemplate {
    /// The template's description, as the component gave it.
    pub info: TemplateInfo,
    /// SHA-256 of the component.
    pub digest: String,
    /// Whether the component is one of the built-ins.
    pub builtin: bool,
    /// When the id was first registered.
    pub created_at: Timestamp,
    /// When it last changed component.
    pub updated_at: Timestamp,
}

/// A component to register.
#[derive(Debug)]
pub struct NewComponent<'a> {
    /// Its description.
    pub info: &'a TemplateInfo,
    /// SHA-256 of `wasm`.
    pub digest: &'a str,
    /// The component bytes.
    pub wasm: &'a [u8],
    /// Built in or uploaded.
    pub builtin: bool,
    /// The key that uploaded it.
    pub uploaded_by: Option<&'a str>,
}

super::dispatch! {
    /// Stores a component and makes its template id run it.
    fn register_component(&self, component: NewComponent<'_>, at: Timestamp) -> Result<()>;
    /// Every registered template with the bytes of its current component.
    fn load_templates(&self) -> Result<Vec<(StoredTemplate, Vec<u8>)>>;
}

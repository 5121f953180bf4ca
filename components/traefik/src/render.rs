//! Rendering the Traefik v3 manifests from values.

/// Renders the Namespace that holds Traefik. Values are not supported yet: any is refused.
///
/// # Errors
/// A message when values are given.
pub fn render(values: &str) -> Result<String, String> {
    if !values.trim().is_empty() {
        return Err("values are not supported yet".into());
    }
    Ok("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: traefik\n".into())
}

#[cfg(test)]
mod tests {
    #[test]
    fn default_namespace() {
        assert!(super::render("").unwrap().contains("name: traefik"));
        assert!(super::render("x: 1").is_err());
    }
}

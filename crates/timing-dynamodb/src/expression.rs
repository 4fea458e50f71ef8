//! The one builder of DynamoDB expressions: every request's UpdateExpression, ConditionExpression,
//! KeyConditionExpression, FilterExpression and ProjectionExpression, with their attribute names and
//! values. Name placeholders are `#` and the attribute's own name; value placeholders are `:` and a
//! label the caller picks. What a user typed only ever becomes a value, never expression text.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Expression {
    pub names: HashMap<String, String>,
    pub values: HashMap<String, AttributeValue>,
    set: String,
    remove: String,
    add: String,
}

/// Appends `#attribute` to `text` and registers it as a name. Written in place: the record write sets
/// some forty attributes per event, and a placeholder string per attribute would be as many allocations.
fn push_name(names: &mut HashMap<String, String>, text: &mut String, attribute: &str) {
    let start = text.len();
    text.push('#');
    text.push_str(attribute);
    if !names.contains_key(&text[start..]) {
        names.insert(text[start..].to_owned(), attribute.to_owned());
    }
}

/// Appends `:label` to `text` and makes it hold `value`.
fn push_value(values: &mut HashMap<String, AttributeValue>, text: &mut String, label: &str, value: AttributeValue) {
    let start = text.len();
    text.push(':');
    text.push_str(label);
    values.insert(text[start..].to_owned(), value);
}

fn separate(clause: &mut String) {
    if !clause.is_empty() {
        clause.push_str(", ");
    }
}

impl Expression {
    pub fn new() -> Expression {
        Expression::default()
    }

    /// Starts from a prepared table of names (one built once and cloned is cheaper than hashing every
    /// name again for every request).
    pub fn with_names(names: HashMap<String, String>) -> Expression {
        Expression {
            names,
            ..Expression::default()
        }
    }

    /// `#attribute`, registered as a name.
    pub fn name(&mut self, attribute: &str) -> String {
        let mut placeholder = String::with_capacity(attribute.len() + 1);
        push_name(&mut self.names, &mut placeholder, attribute);
        placeholder
    }

    /// `#label`, standing for `attribute`: for names that are not alphanumeric, which a placeholder must be.
    pub fn aliased_name(&mut self, label: &str, attribute: &str) -> String {
        let placeholder = format!("#{label}");
        self.names.insert(placeholder.clone(), attribute.to_owned());
        placeholder
    }

    /// `:label`, holding `value`.
    pub fn value(&mut self, label: &str, value: AttributeValue) -> String {
        let mut placeholder = String::with_capacity(label.len() + 1);
        push_value(&mut self.values, &mut placeholder, label, value);
        placeholder
    }

    /// `SET #attribute = :attribute`.
    pub fn set(&mut self, attribute: &str, value: AttributeValue) {
        separate(&mut self.set);
        push_name(&mut self.names, &mut self.set, attribute);
        self.set.push_str(" = ");
        push_value(&mut self.values, &mut self.set, attribute, value);
    }

    /// A SET action written by the caller from placeholders it registered (`#a = if_not_exists(#b, :c)`).
    pub fn set_action(&mut self, action: &str) {
        separate(&mut self.set);
        self.set.push_str(action);
    }

    /// `REMOVE #attribute`.
    pub fn remove(&mut self, attribute: &str) {
        separate(&mut self.remove);
        push_name(&mut self.names, &mut self.remove, attribute);
    }

    /// `ADD #attribute :attribute`: a number added, or set members added.
    pub fn add(&mut self, attribute: &str, value: AttributeValue) {
        separate(&mut self.add);
        push_name(&mut self.names, &mut self.add, attribute);
        self.add.push(' ');
        push_value(&mut self.values, &mut self.add, attribute, value);
    }

    /// The UpdateExpression: `SET … REMOVE … ADD …`, each clause only when it has actions.
    pub fn update(&self) -> String {
        let mut text = String::with_capacity(self.set.len() + self.remove.len() + self.add.len() + 20);
        for (keyword, actions) in [("SET ", &self.set), ("REMOVE ", &self.remove), ("ADD ", &self.add)] {
            if !actions.is_empty() {
                if !text.is_empty() {
                    text.push(' ');
                }
                text.push_str(keyword);
                text.push_str(actions);
            }
        }
        text
    }

    /// `#attribute = :label`.
    pub fn equals(&mut self, attribute: &str, label: &str, value: AttributeValue) -> String {
        format!("{} = {}", self.name(attribute), self.value(label, value))
    }

    /// `#attribute BETWEEN :from AND :to`, both ends included.
    pub fn between(&mut self, attribute: &str, from: AttributeValue, to: AttributeValue) -> String {
        format!(
            "{} BETWEEN {} AND {}",
            self.name(attribute),
            self.value("from", from),
            self.value("to", to)
        )
    }

    /// `#attribute IN (:label0, :label1, …)`; DynamoDB takes at most 100 operands.
    pub fn one_of(&mut self, attribute: &str, label: &str, values: impl IntoIterator<Item = AttributeValue>) -> String {
        let operands: Vec<String> = values
            .into_iter()
            .enumerate()
            .map(|(i, value)| self.value(&format!("{label}{i}"), value))
            .collect();
        format!("{} IN ({})", self.name(attribute), operands.join(", "))
    }

    /// A ProjectionExpression of `attributes`.
    pub fn projection(&mut self, attributes: &[&str]) -> String {
        let names: Vec<String> = attributes.iter().map(|attribute| self.name(attribute)).collect();
        names.join(", ")
    }
}

/// `a AND b AND …`, or None for no conditions.
pub fn all_of(conditions: Vec<String>) -> Option<String> {
    (!conditions.is_empty()).then(|| conditions.join(" AND "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> AttributeValue {
        AttributeValue::S(text.into())
    }

    #[test]
    fn update_clauses_come_in_order_and_only_when_used() {
        let mut expression = Expression::new();
        assert_eq!(expression.update(), "");
        expression.add("count", AttributeValue::N("2".into()));
        assert_eq!(expression.update(), "ADD #count :count");
        expression.remove("stopCode");
        expression.set("family", s("web"));
        expression.set("version", AttributeValue::N("7".into()));
        expression.remove("startedAt");
        assert_eq!(
            expression.update(),
            "SET #family = :family, #version = :version REMOVE #stopCode, #startedAt ADD #count :count"
        );
        assert_eq!(expression.names["#startedAt"], "startedAt");
        assert_eq!(expression.values[":family"], s("web"));
        assert_eq!(expression.values[":count"], AttributeValue::N("2".into()));
        assert_eq!(expression.names.len(), 5);
    }

    #[test]
    fn conditions_keep_user_text_in_values() {
        let hostile = "x) OR attribute_exists(#taskArn";
        let mut expression = Expression::new();
        let key = expression.equals("family", "family", s(hostile));
        let range = expression.between("createdAt", s("a"), s("b"));
        let revisions = expression.one_of(
            "revision",
            "revision",
            [3, 12].map(|n| AttributeValue::N(n.to_string())),
        );
        assert_eq!(
            all_of(vec![key, range, revisions]).unwrap(),
            "#family = :family AND #createdAt BETWEEN :from AND :to AND #revision IN (:revision0, :revision1)"
        );
        assert_eq!(expression.values[":family"], s(hostile));
        assert_eq!(expression.values[":revision1"], AttributeValue::N("12".into()));
        assert_eq!(all_of(Vec::new()), None);
        assert_eq!(expression.projection(&["a", "family"]), "#a, #family");
        assert_eq!(expression.names["#a"], "a");
    }
}

//! DynamoDB's item size, which sets the write units an update costs (1 WCU per KB, 2 in a
//! transaction, of the larger of the item before and after). Rules from the DynamoDB developer
//! guide ("Item sizes and formats"): a name and a string count their UTF-8 bytes; a number about
//! 1 byte plus 1 per two significant digits; a set the sum of its members; a list or map 3 bytes plus
//! 1 per element, plus its elements (and a map's names); a boolean or null 1 byte.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

pub fn item_bytes(item: &HashMap<String, AttributeValue>) -> usize {
    item.iter().map(|(name, value)| name.len() + value_bytes(value)).sum()
}

fn number_bytes(number: &str) -> usize {
    let digits = number.chars().filter(char::is_ascii_digit).count();
    1 + digits.div_ceil(2)
}

fn value_bytes(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(text) => text.len(),
        AttributeValue::N(number) => number_bytes(number),
        AttributeValue::B(blob) => blob.as_ref().len(),
        AttributeValue::Ss(texts) => texts.iter().map(String::len).sum(),
        AttributeValue::Ns(numbers) => numbers.iter().map(|n| number_bytes(n)).sum(),
        AttributeValue::Bs(blobs) => blobs.iter().map(|b| b.as_ref().len()).sum(),
        AttributeValue::L(values) => 3 + values.iter().map(|v| 1 + value_bytes(v)).sum::<usize>(),
        AttributeValue::M(map) => 3 + map.iter().map(|(k, v)| 1 + k.len() + value_bytes(v)).sum::<usize>(),
        _ => 1,
    }
}

/// Write units of one update at `bytes` (the larger of before and after): 1 per started KB.
pub fn write_units(bytes: usize) -> usize {
    bytes.div_ceil(1024).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_the_guide() {
        let item = HashMap::from([
            ("taskArn".to_owned(), AttributeValue::S("arn:x".into())), // 7 + 5
            ("version".to_owned(), AttributeValue::N("123".into())),   // 7 + 1 + 2
            ("tags".to_owned(), AttributeValue::Ss(vec!["ab".into(), "cde".into()])), // 4 + 5
            ("flag".to_owned(), AttributeValue::Bool(true)),           // 4 + 1
            (
                "m".to_owned(),
                AttributeValue::M(HashMap::from([("k".to_owned(), AttributeValue::S("vv".into()))])),
            ), // 1 + 3 + 1 + 1 + 2
        ]);
        assert_eq!(item_bytes(&item), 12 + 10 + 9 + 5 + 8);
        assert_eq!((write_units(0), write_units(1024), write_units(1025)), (1, 1, 2));
    }
}

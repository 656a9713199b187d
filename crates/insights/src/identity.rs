//! A test's identity: `(test_case_id, classname, name)`, and its `test_id`, a UUID v5 of the
//! three that any client can compute without asking runledger.

use runledger_types::TestCaseId;
use sha1::{Digest, Sha1};
use std::sync::LazyLock;
use uuid::Uuid;

/// The namespace of test ids (a UUID v5 of `runledger:test` in the URL namespace).
pub fn namespace() -> Uuid {
    *NAMESPACE
}

static NAMESPACE: LazyLock<Uuid> =
    LazyLock::new(|| Uuid::new_v5(&Uuid::NAMESPACE_URL, b"runledger:test"));

/// What names one test across runs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TestKey {
    /// The test case whose runs report it.
    pub test_case_id: TestCaseId,
    /// Its class or module, as the JUnit report gives it (may be empty).
    pub classname: String,
    /// Its name.
    pub name: String,
}

/// A test's id: `uuid_v5(namespace(), "<test_case_id>/<n>/<classname>/<name>")`, with the test
/// case id hyphenated in lower case and `n` the classname's length in bytes (so no classname and
/// name can be confused for another pair, whatever characters they hold).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TestId(pub Uuid);

impl TestKey {
    /// The key of a test.
    pub fn new(test_case_id: TestCaseId, classname: &str, name: &str) -> Self {
        Self {
            test_case_id,
            classname: classname.to_owned(),
            name: name.to_owned(),
        }
    }

    /// This test's id.
    pub fn id(&self) -> TestId {
        test_id(self.test_case_id, &self.classname, &self.name)
    }
}

/// The id of the test `(test_case_id, classname, name)` ([`TestId`]), computed without
/// allocating and with the CPU's SHA-1 instructions where it has them: a rebuild computes one
/// per result, a million for a million results.
pub fn test_id(test_case_id: TestCaseId, classname: &str, name: &str) -> TestId {
    let mut case = [0u8; 36];
    let case = test_case_id.0.hyphenated().encode_lower(&mut case);
    let mut hasher = Sha1::new();
    hasher.update(namespace().as_bytes());
    hasher.update(case.as_bytes());
    hasher.update(b"/");
    hasher.update(classname.len().to_string().as_bytes());
    hasher.update(b"/");
    hasher.update(classname.as_bytes());
    hasher.update(b"/");
    hasher.update(name.as_bytes());
    let digest = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    TestId(uuid::Builder::from_sha1_bytes(bytes).into_uuid())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(n: u128) -> TestCaseId {
        TestCaseId(Uuid::from_u128(n))
    }

    #[test]
    fn ids_are_stable_and_tell_the_three_parts_apart() {
        let key = TestKey::new(case(1), "tests.test_math", "test_add");
        assert_eq!(key.id(), key.clone().id());
        assert_eq!(key.id().0.get_version_num(), 5);
        assert_ne!(
            key.id(),
            TestKey::new(case(2), "tests.test_math", "test_add").id()
        );
        assert_ne!(
            key.id(),
            TestKey::new(case(1), "tests.test_mat", "htest_add").id()
        );
        assert_ne!(
            TestKey::new(case(1), "a/b", "c").id(),
            TestKey::new(case(1), "a", "b/c").id(),
            "the separator inside a part cannot shift it into the next"
        );
    }

    #[test]
    fn the_fast_id_is_the_uuid_crates_v5() {
        for (classname, name) in [("", ""), ("a", "b"), ("tests.test_ü", "test[1-2] x/y")] {
            let key = TestKey::new(case(42), classname, name);
            let recipe = format!(
                "{}/{}/{classname}/{name}",
                case(42).0.hyphenated(),
                classname.len()
            );
            assert_eq!(key.id().0, Uuid::new_v5(&namespace(), recipe.as_bytes()));
        }
    }

    #[test]
    fn the_documented_recipe_gives_the_id() {
        let key = TestKey::new(case(7), "m", "t");
        let by_hand = Uuid::new_v5(
            &Uuid::new_v5(&Uuid::NAMESPACE_URL, b"runledger:test"),
            b"00000000-0000-0000-0000-000000000007/1/m/t",
        );
        assert_eq!(key.id().0, by_hand);
    }
}

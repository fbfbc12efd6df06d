//! Golden tests: hand-checked strings for each answer type's edge cases.

use super::*;

fn check(kind: AnswerType, cases: &[(&str, Option<&str>)]) {
    for (text, want) in cases {
        assert_eq!(
            extract(kind, text).as_deref(),
            *want,
            "{kind:?} on {text:?}"
        );
    }
}

#[test]
fn numbers() {
    check(
        AnswerType::Number,
        &[
            ("3 + 4 = 7. 7 * 2 = 14. The answer is 14.", Some("14")),
            ("So she has 1,200.50 dollars", Some("1200.5")),
            ("The answer is -3 apples, not 5", Some("-3")),
            ("no digits here", None),
            ("half is 1/2", Some("0.5")),
            ("Therefore, the answer (arabic numerals) is 2.", Some("2")),
            (
                "Therefore, the answer (arabic numerals) is $51.",
                Some("51"),
            ),
            ("Therefore, the answer is 51.0", Some("51")),
            (
                "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n#### 72",
                Some("72"),
            ),
            ("12 + 7 = 19 --> 19", Some("19")),
            ("The answer is 3, 4 or 5", Some("3")),
            ("The answer is 1,000,000.", Some("1000000")),
            ("He pays $1,234 in total", Some("1234")),
            ("The answers is 0.25 kg", Some("0.25")),
            ("the answer would be 7 cookies", Some("7")),
            ("Answer: 42", Some("42")),
            ("We get 10 - 15 = -5", Some("-5")),
            ("x-3 is not a number but 8 is", Some("8")),
            ("The answer is 3/4", Some("0.75")),
            ("The answer is 6 dollars and 50 cents.", Some("6")),
            ("The answer is twelve.", None),
            ("Total = 5.5 hours", Some("5.5")),
            ("The answer is 007", Some("7")),
            ("The answer is (84 / 2).", Some("42")),
            (
                "So he scored 84 points in 2 rounds. The answer is (84 / 2).",
                Some("42"),
            ),
            ("The answer is (3 + 4) apples", Some("7")),
            ("The answer is (about 7)", Some("7")),
            (
                "It costs 2.50 each, so 3 cost 7.50. The answer is 7.5",
                Some("7.5"),
            ),
        ],
    );
    assert!(matches(AnswerType::Number, Some("14.0"), "14"));
    assert!(matches(AnswerType::Number, Some("0.5"), "1/2"));
    assert!(!matches(AnswerType::Number, Some("15"), "14"));
    assert!(!matches(AnswerType::Number, None, "14"));
    assert!(matches(AnswerType::Number, Some("1200"), "1,200"));
    assert_eq!(eval_expression("( 84.0 / 2.0 )").as_deref(), Some("42"));
    assert_eq!(
        eval_expression("( ( 5.0 + 3.0 ) * 2.0 )").as_deref(),
        Some("16")
    );
    assert_eq!(eval_expression("import os"), None);
}

#[test]
fn yes_no() {
    check(
        AnswerType::YesNo,
        &[
            (
                "It flips twice, so yes it is. The answer is no.",
                Some("no"),
            ),
            ("So, yes.", Some("yes")),
            ("Therefore, the answer (Yes or No) is:\nYes", Some("yes")),
            ("Therefore, the answer (Yes or No) is moot.", None),
            ("The answer is No, it is not.", Some("no")),
            ("The answer is \"yes\".", Some("yes")),
            ("Nobody knows. Not sure.", None),
            ("yes or no? I say no", Some("no")),
            ("Therefore, the answer (Yes or No) is YES.", Some("yes")),
            ("The answer is: no", Some("no")),
        ],
    );
}

#[test]
fn choices() {
    let c5 = AnswerType::Choice(5);
    check(
        c5,
        &[
            ("Therefore, among A through E, the answer is C.", Some("C")),
            (
                "Therefore, the answer is (E). \nTherefore, among A through E, the answer is E.",
                Some("E"),
            ),
            ("So the answer is (d) math problem.", Some("D")),
            ("The answer is (B)", Some("B")),
            ("The answer is B) 62", Some("B")),
            ("I think (a) fits best.", Some("A")),
            ("The answer is F.", None),
            ("The answer is none of them.", None),
        ],
    );
    let opts: Vec<String> = [
        "park",
        "coloring book",
        "garden center",
        "math problem",
        "gravity",
    ]
    .map(String::from)
    .to_vec();
    assert_eq!(
        extract_with_options(c5, "So the answer is math problem.", &opts).as_deref(),
        Some("D")
    );
    assert_eq!(
        extract_with_options(c5, "The answer is a garden center nearby.", &opts).as_deref(),
        Some("C")
    );
    assert_eq!(
        extract(
            AnswerType::Choice(3),
            "Therefore, among A through C, the answer is A."
        ),
        Some("A".into())
    );
    assert_eq!(
        extract(
            AnswerType::Choice(6),
            "Therefore, among A through F, the answer is F."
        ),
        Some("F".into())
    );
}

#[test]
fn free_text() {
    check(
        AnswerType::Text,
        &[
            (
                "Putting them together: \"ab\". The answer is ReK.",
                Some("rek"),
            ),
            (
                "So the final answer is \"anal\". \nTherefore, the answer is \"anal\".",
                Some("anal"),
            ),
            ("The answer is \"yajo\".", Some("yajo")),
            ("The answer is 'ns'.", Some("ns")),
            ("The answer is n s.", Some("ns")),
            ("Concatenated: nbe", Some("nbe")),
        ],
    );
}

#[test]
fn dates() {
    check(
        AnswerType::Date,
        &[
            (
                "Today is 05/01/2021. The answer is 05/02/2021.",
                Some("05/02/2021"),
            ),
            ("The answer is 5/2/2021", Some("05/02/2021")),
            ("so it was 12/31/1999", Some("12/31/1999")),
            ("The answer is 13/01/2021", None),
            ("The answer is May 2, 2021", None),
        ],
    );
}

/// Number formats × answer contexts: every written form of each value, in each context, reads
/// as the expected normalised number.
#[test]
fn number_forms_in_every_context() {
    let forms: &[(&str, &str)] = &[
        ("7", "7"),
        ("07", "7"),
        ("-7", "-7"),
        ("7.0", "7"),
        ("7.5", "7.5"),
        ("-0.25", "-0.25"),
        ("0.125", "0.125"),
        ("1,000", "1000"),
        ("12,345", "12345"),
        ("1,234,567", "1234567"),
        ("1,200.50", "1200.5"),
        ("$5", "5"),
        ("$1,250", "1250"),
        ("$3.75", "3.75"),
        ("3/4", "0.75"),
        ("1/8", "0.125"),
        ("10/4", "2.5"),
        ("12 apples", "12"),
        ("45 minutes", "45"),
        ("8 km/h", "8"),
        ("100%", "100"),
        ("2.5 hours", "2.5"),
        ("9 dollars", "9"),
        ("-3 degrees", "-3"),
        ("0", "0"),
        ("365 days", "365"),
        ("1000000", "1000000"),
        ("3.14159", "3.14159"),
        ("40.", "40"),
        ("6,000 feet", "6000"),
    ];
    let contexts: &[&str] = &[
        "The answer is {}.",
        "Therefore, the answer (arabic numerals) is {}",
        "Some steps: 3 + 4 = 9. The answer is {}",
        "Reasoning with 11 and 12 first.\n#### {}",
        "so the total is 2 + 2 --> {}",
        "Answer: {}",
        "We add 5 and 6 and get {}",
    ];
    let mut n = 0;
    for (form, want) in forms {
        for ctx in contexts {
            let text = ctx.replace("{}", form);
            assert_eq!(
                extract(AnswerType::Number, &text).as_deref(),
                Some(*want),
                "{text:?}"
            );
            n += 1;
        }
    }
    assert_eq!(n, 210);
}

/// Yes/no and letter forms × contexts.
#[test]
fn yes_no_and_letter_forms_in_every_context() {
    let yn: &[(&str, &str)] = &[
        ("yes", "yes"),
        ("Yes", "yes"),
        ("YES", "yes"),
        ("\"yes\"", "yes"),
        ("Yes!", "yes"),
        ("yes, it is", "yes"),
        ("no", "no"),
        ("No.", "no"),
        ("NO", "no"),
        ("no, never", "no"),
    ];
    let letters: &[(&str, &str)] = &[
        ("A", "A"),
        ("(B)", "B"),
        ("(c)", "C"),
        ("D)", "D"),
        ("E.", "E"),
        ("(b) library", "B"),
    ];
    let contexts = [
        "The answer is {}",
        "Therefore, the answer (Yes or No) is {}",
        "So the answer is {}.",
        "Answer: {}",
    ];
    for ctx in contexts {
        for (f, w) in yn {
            assert_eq!(
                extract(AnswerType::YesNo, &ctx.replace("{}", f)).as_deref(),
                Some(*w),
                "{ctx} {f}"
            );
        }
        for (f, w) in letters {
            assert_eq!(
                extract(AnswerType::Choice(5), &ctx.replace("{}", f)).as_deref(),
                Some(*w),
                "{ctx} {f}"
            );
        }
    }
}

#[test]
fn many_choices_do_not_overflow() {
    // `b'A' + n` used to overflow a u8 (a panic) for n > 190 choices or options.
    assert_eq!(AnswerType::Choice(250).name(), "choice A-Z");
    assert_eq!(AnswerType::Choice(5).name(), "choice A-E");
    assert_eq!(AnswerType::Choice(0).name(), "choice A-A");
    assert_eq!(
        extract(AnswerType::Choice(255), "The answer is (z).").as_deref(),
        Some("Z")
    );
    let options: Vec<String> = (0..300).map(|i| format!("<{i}>")).collect();
    assert_eq!(
        extract_with_options(AnswerType::Choice(5), "The answer is <25>.", &options).as_deref(),
        Some("Z")
    );
    // Past Z an option cannot be named by its text.
    assert_eq!(
        extract_with_options(AnswerType::Choice(5), "The answer is <299>.", &options),
        None
    );
    assert_eq!(letter(0), 'A');
    assert_eq!(letter(25), 'Z');
    assert_eq!(letter(400), 'Z');
}

#[test]
fn long_expressions_are_not_evaluated() {
    // The evaluator recurses once per operator: a long chain would overflow the stack.
    let chain = format!("({}1)", "1+".repeat(100_000));
    assert_eq!(eval_expression(&chain), None);
    assert_eq!(
        extract(AnswerType::Number, &format!("The answer is {chain}.")).as_deref(),
        Some("1")
    );
    let ok = format!("({}1)", "1+".repeat(100));
    assert_eq!(eval_expression(&ok).as_deref(), Some("101"));
    assert_eq!(
        eval_expression("( ( 17.0 + 15.0 ) + 2.0 )").as_deref(),
        Some("34")
    );
}

#[test]
fn numbers_that_overflow_are_no_numbers() {
    let huge = "9".repeat(400);
    assert_eq!(normalise_number(&huge), None);
    assert_eq!(normalise_number("1/1e-320"), None);
    assert_eq!(normalise_number("nan"), None);
    assert_eq!(normalise_number("inf"), None);
    assert_eq!(
        normalise_number("1e20").as_deref(),
        Some("100000000000000000000")
    );
    assert!(!matches(AnswerType::Number, Some("nan"), "nan"));
}

#[test]
fn thousands_separators_on_long_text() {
    assert_eq!(
        strip_thousands("1,200.50 and 3, 4 and ,5, 6,"),
        "1200.50 and 3, 4 and ,5, 6,"
    );
    assert_eq!(strip_thousands("é1,000é"), "é1000é");
    let long = "1,2 ".repeat(1 << 18);
    assert_eq!(strip_thousands(&long), "12 ".repeat(1 << 18));
}

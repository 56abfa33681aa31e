//! The mistakes a model makes most, read off its confusion matrix: which class was drawn,
//! which one the model guessed instead, how often, and what share of that class's validation
//! drawings went that way. With hundreds of classes the matrix picture is a texture rather
//! than something to read; this list is what a person looks at to see what to collect more of.

use serde::Serialize;

/// One kind of mistake: drawings of `drawn` guessed as `guessed`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Confusion {
    pub drawn: String,
    pub guessed: String,
    /// Validation drawings of `drawn` guessed as `guessed`.
    pub count: u32,
    /// `count` over the validation drawings of `drawn`.
    pub share: f64,
}

/// The `limit` most frequent mistakes in `confusion[drawn][guessed]`, most frequent first
/// (ties: the larger share of its class first, then class order). Right guesses and
/// mistakes that never happened are not listed; a matrix that does not fit `classes` gives
/// only the cells it has names for.
pub fn top_confusions(classes: &[String], confusion: &[Vec<u32>], limit: usize) -> Vec<Confusion> {
    let mut mistakes: Vec<Confusion> = Vec::new();
    for (drawn, row) in confusion.iter().enumerate().take(classes.len()) {
        let support: u32 = row.iter().sum();
        for (guessed, &count) in row.iter().enumerate().take(classes.len()) {
            if guessed == drawn || count == 0 {
                continue;
            }
            mistakes.push(Confusion {
                drawn: classes[drawn].clone(),
                guessed: classes[guessed].clone(),
                count,
                share: f64::from(count) / f64::from(support),
            });
        }
    }
    // A stable sort keeps class order among equals.
    mistakes.sort_by(|a, b| b.count.cmp(&a.count).then(b.share.total_cmp(&a.share)));
    mistakes.truncate(limit);
    mistakes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        ["circle", "octagon", "moon", "square"][..n]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    #[test]
    fn the_most_frequent_mistakes_come_first_and_right_guesses_are_not_mistakes() {
        let matrix = vec![
            vec![9, 1, 0, 0],  // circle: 1 of 10 guessed octagon
            vec![6, 3, 0, 1],  // octagon: 6 of 10 guessed circle, 1 square
            vec![0, 0, 5, 0],  // moon: always right
            vec![0, 1, 0, 19], // square: 1 of 20 guessed octagon
        ];
        let top = top_confusions(&names(4), &matrix, 10);
        let pairs: Vec<(&str, &str, u32)> = top
            .iter()
            .map(|c| (c.drawn.as_str(), c.guessed.as_str(), c.count))
            .collect();
        assert_eq!(
            pairs,
            [
                ("octagon", "circle", 6),
                // Three mistakes of one drawing each: the largest share of its class first.
                ("circle", "octagon", 1),
                ("octagon", "square", 1),
                ("square", "octagon", 1),
            ]
        );
        assert!((top[0].share - 0.6).abs() < 1e-12);
        assert!((top[3].share - 0.05).abs() < 1e-12);
    }

    #[test]
    fn the_list_is_cut_at_the_limit_and_a_perfect_model_has_none() {
        let matrix = vec![vec![2, 3, 1], vec![4, 0, 0], vec![0, 0, 7]];
        let top = top_confusions(&names(3), &matrix, 2);
        assert_eq!(top.len(), 2);
        assert_eq!((top[0].drawn.as_str(), top[0].count), ("octagon", 4));
        let perfect = vec![vec![3, 0], vec![0, 4]];
        assert!(top_confusions(&names(2), &perfect, 10).is_empty());
    }

    #[test]
    fn a_matrix_larger_than_its_class_list_is_read_only_where_named() {
        let matrix = vec![vec![1, 2, 5], vec![0, 1, 5], vec![9, 9, 9]];
        let top = top_confusions(&names(2), &matrix, 10);
        assert_eq!(top.len(), 1);
        assert_eq!(
            (top[0].drawn.as_str(), top[0].guessed.as_str()),
            ("circle", "octagon")
        );
    }
}

//! What each network accepts in a post: text length, titles, boards and media. Checked on
//! create and edit (a 422 whose field names the account) and again by the sandbox
//! provider when it publishes, as the network would.

use space_connections::Network;
use space_http::fields::thousands;

/// A media item of the Space, as a post refers to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    pub id: String,
    pub content_type: String,
}

impl Media {
    fn is_video(&self) -> bool {
        self.content_type.starts_with("video/")
    }

    fn is_image(&self) -> bool {
        self.content_type.starts_with("image/")
    }
}

/// One account's version of a post, as the network will receive it.
#[derive(Debug, Clone, Copy)]
pub struct Draft<'a> {
    pub content: &'a str,
    pub title: Option<&'a str>,
    pub board_id: Option<&'a str>,
    pub media: &'a [Media],
    /// The boards of the account (Pinterest); empty elsewhere.
    pub boards: &'a [&'a str],
}

/// The longest text a post may carry on `network`, in characters.
pub fn max_text(network: Network) -> usize {
    match network {
        Network::X => 280,
        Network::Linkedin => 3_000,
        Network::Instagram | Network::Tiktok => 2_200,
        Network::Facebook => 63_206,
        Network::Pinterest | Network::Threads => 500,
        Network::Bluesky => 300,
        Network::Youtube => 5_000,
    }
}

/// How many media a post takes on `network`: (at least, at most images, at most videos).
/// A post carries images or one video, never both.
fn media_limits(network: Network) -> (usize, usize, usize) {
    match network {
        Network::X | Network::Bluesky => (0, 4, 1),
        Network::Linkedin => (0, 9, 1),
        Network::Facebook | Network::Threads => (0, 10, 1),
        Network::Instagram => (1, 10, 1),
        Network::Pinterest => (1, 5, 1),
        Network::Tiktok => (1, 35, 1),
        Network::Youtube => (1, 0, 1),
    }
}

/// Every rule `draft` breaks on `network`: (field, message), the field relative to the
/// account's variant (`content`, `title`, `board_id`, `media_ids`).
pub fn check(network: Network, draft: Draft<'_>) -> Vec<(&'static str, String)> {
    let label = network.label();
    let mut broken = Vec::new();
    let max = max_text(network);
    if draft.content.chars().count() > max {
        broken.push((
            "content",
            format!("{label} posts are at most {} characters", thousands(max)),
        ));
    }
    if draft.content.trim().is_empty() && draft.media.is_empty() {
        broken.push(("content", format!("A {label} post needs text or media")));
    }
    match (network, draft.title) {
        (Network::Youtube, None) => broken.push(("title", "YouTube videos need a title of 1 to 100 characters".into())),
        (Network::Youtube | Network::Pinterest, Some(title)) if title.chars().count() > 100 => {
            broken.push(("title", format!("{label} titles are at most 100 characters")))
        }
        (Network::Youtube, Some(title)) if title.trim().is_empty() => {
            broken.push(("title", "YouTube videos need a title of 1 to 100 characters".into()))
        }
        (Network::Youtube | Network::Pinterest, _) | (_, None) => {}
        (_, Some(_)) => broken.push(("title", format!("{label} posts have no title"))),
    }
    match (network, draft.board_id) {
        (Network::Pinterest, None) => {
            broken.push(("board_id", "Pinterest pins need a board_id of this account".into()))
        }
        (Network::Pinterest, Some(board)) if !draft.boards.contains(&board) => broken.push((
            "board_id",
            format!("`{board}` is not a board of this account; GET /social/accounts/{{id}}/boards lists them"),
        )),
        (Network::Pinterest, Some(_)) | (_, None) => {}
        (_, Some(_)) => broken.push(("board_id", format!("{label} posts have no board"))),
    }
    if let Some(message) = media_problem(network, draft.media) {
        broken.push(("media_ids", message));
    }
    broken
}

fn media_problem(network: Network, media: &[Media]) -> Option<String> {
    let label = network.label();
    if let Some(other) = media.iter().find(|m| !m.is_image() && !m.is_video()) {
        return Some(format!(
            "{label} takes images and videos; `{}` is {}",
            other.id, other.content_type
        ));
    }
    let videos = media.iter().filter(|m| m.is_video()).count();
    let images = media.len() - videos;
    let (least, most_images, most_videos) = media_limits(network);
    if media.len() < least {
        return Some(match network {
            Network::Youtube => "YouTube posts are exactly one video".into(),
            Network::Tiktok => "TikTok posts need one video or images".into(),
            _ => format!("{label} posts need at least {least} image or video"),
        });
    }
    if videos > 0 && (images > 0 || videos > most_videos) {
        return Some(format!("{label} posts carry one video, or images, not both"));
    }
    if network == Network::Youtube && images > 0 {
        return Some("YouTube posts are exactly one video".into());
    }
    if images > most_images {
        return Some(format!("{label} posts carry at most {most_images} images"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn media(kinds: &[&str]) -> Vec<Media> {
        kinds
            .iter()
            .enumerate()
            .map(|(i, kind)| Media {
                id: format!("med_{i}"),
                content_type: (*kind).to_owned(),
            })
            .collect()
    }

    fn draft<'a>(content: &'a str, media: &'a [Media]) -> Draft<'a> {
        Draft {
            content,
            title: None,
            board_id: None,
            media,
            boards: &[],
        }
    }

    fn fields(network: Network, draft: Draft<'_>) -> Vec<&'static str> {
        check(network, draft).into_iter().map(|(field, _)| field).collect()
    }

    #[test]
    fn text_limits_per_network() {
        for (network, max) in [
            (Network::X, 280),
            (Network::Linkedin, 3_000),
            (Network::Instagram, 2_200),
            (Network::Facebook, 63_206),
            (Network::Threads, 500),
            (Network::Bluesky, 300),
        ] {
            let image = media(&["image/png"]);
            let at = "a".repeat(max);
            let over = "a".repeat(max + 1);
            assert!(fields(network, draft(&at, &image)).is_empty(), "{network:?}");
            assert_eq!(fields(network, draft(&over, &image)), ["content"], "{network:?}");
        }
        let long = "é".repeat(3_001);
        let message = &check(Network::Linkedin, draft(&long, &[]))[0].1;
        assert_eq!(message, "LinkedIn posts are at most 3,000 characters");
    }

    #[test]
    fn media_rules_per_network() {
        let none = media(&[]);
        let one_video = media(&["video/mp4"]);
        let five_images = media(&["image/png"; 5]);
        let mixed = media(&["image/png", "video/mp4"]);
        assert_eq!(fields(Network::Instagram, draft("hi", &none)), ["media_ids"]);
        assert!(fields(Network::Instagram, draft("hi", &five_images)).is_empty());
        assert_eq!(fields(Network::Bluesky, draft("hi", &five_images)), ["media_ids"]);
        assert_eq!(fields(Network::X, draft("hi", &mixed)), ["media_ids"]);
        assert!(fields(Network::Tiktok, draft("hi", &one_video)).is_empty());
        let youtube = |media| Draft {
            title: Some("Launch"),
            ..draft("hi", media)
        };
        assert!(fields(Network::Youtube, youtube(&one_video)).is_empty());
        assert_eq!(fields(Network::Youtube, youtube(&five_images)), ["media_ids"]);
        assert_eq!(fields(Network::Youtube, draft("hi", &one_video)), ["title"]);
        let pdf = media(&["application/pdf"]);
        assert_eq!(fields(Network::Linkedin, draft("hi", &pdf)), ["media_ids"]);
    }

    #[test]
    fn boards_and_titles_belong_to_their_networks() {
        let image = media(&["image/jpeg"]);
        let pin = |board| Draft {
            board_id: board,
            boards: &["brd_ideas"],
            ..draft("hi", &image)
        };
        assert!(fields(Network::Pinterest, pin(Some("brd_ideas"))).is_empty());
        assert_eq!(fields(Network::Pinterest, pin(Some("brd_other"))), ["board_id"]);
        assert_eq!(fields(Network::Pinterest, pin(None)), ["board_id"]);
        let titled = Draft {
            title: Some("A title"),
            ..draft("hi", &image)
        };
        assert_eq!(fields(Network::X, titled), ["title"]);
    }
}

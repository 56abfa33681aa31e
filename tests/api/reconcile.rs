//! Start-up reconciliation, driven through the stores the way a crash would leave them.

use doodlebox::domain::drawing::DrawingInput;
use doodlebox::domain::{Drawing, DrawingId, PlayerId, Record};
use doodlebox::store::Stores;
use serde_json::Value;

use crate::helpers::{sample_drawing, TestApp};

#[tokio::test]
async fn a_stroke_record_without_a_row_gets_its_row_rebuilt_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn_on(dir.path().to_owned()).await;
    let stored: Value = app
        .submit(&app.client, &sample_drawing(), None)
        .await
        .json()
        .await
        .unwrap();
    let first_id: DrawingId = stored["id"].as_str().unwrap().parse().unwrap();
    app.stop().await;

    // A crash between the stroke store's sync and the metadata commit leaves this state.
    let player = PlayerId::random();
    let orphan_id = DrawingId::next(doodlebox::store::now_ms(), Some(first_id));
    {
        let stores = Stores::open(dir.path()).unwrap();
        let input: DrawingInput = serde_json::from_value(sample_drawing()).unwrap();
        let record = Record {
            id: orphan_id,
            player,
            created_at_ms: doodlebox::store::now_ms(),
            idempotency: None,
            judgement: None,
            source: None,
            drawing: Drawing::parse(input).unwrap(),
        };
        stores
            .blobs
            .put_durably(&[(orphan_id, record.encode())])
            .unwrap();
        assert!(stores.metadata.drawing(orphan_id).unwrap().is_none());
    }

    let app = TestApp::spawn_on(dir.path().to_owned()).await;
    assert_eq!(app.drawing_count().await, 2);
    let cookie = format!("doodlebox_player={player}");
    let got: Value = reqwest::Client::new()
        .get(app.url(&format!("/api/v1/drawings/{orphan_id}")))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["drawing"], sample_drawing());
    app.stop().await;
}

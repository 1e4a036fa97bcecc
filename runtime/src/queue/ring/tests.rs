//! The ring in one process: sizes, wrap-around, spills, bounds, threads,
//! and what attaching checks.

use super::*;

fn item(i: usize) -> Vec<u8> {
    // Sizes from 0 to past half the ring, so that pads, wrap-around and
    // spilled items all occur.
    let len = (i * 37) % 2500;
    (0..len).map(|j| (i + j) as u8).collect()
}

#[test]
fn items_of_every_size_come_out_whole_and_in_order_through_a_small_ring() {
    let ring = Ring::create(0, MIN_RING).unwrap();
    let mut next_out = 0;
    for i in 0..3000 {
        ring.put(&item(i), false, None).unwrap();
        // Keep a few items in flight so the ring wraps with data in it.
        if i - next_out >= 2 {
            assert_eq!(ring.get(false, None).unwrap(), item(next_out));
            next_out += 1;
        }
    }
    while next_out < 3000 {
        assert_eq!(ring.get(false, None).unwrap(), item(next_out));
        next_out += 1;
    }
    assert!(matches!(ring.get(false, None), Err(RingError::WouldBlock)));
    let st = ring.state();
    assert_eq!((st.count, st.head), (0, st.tail));
}

#[test]
fn a_full_ring_on_an_unbounded_queue_spills_until_even_references_do_not_fit() {
    let ring = Ring::create(0, MIN_RING).unwrap();
    let item = |i: usize| vec![i as u8; 1000];
    let mut n = 0;
    while ring.put(&item(n), false, None).is_ok() {
        n += 1;
        assert!(n < 1000);
    }
    // 3 inline (the reserve stays free), then references to spilled items.
    assert!(n > 30, "{n}");
    assert_eq!(ring.len(), n as u64);
    for i in 0..n {
        assert_eq!(ring.get(false, None).unwrap(), item(i));
    }
}

#[test]
fn spilled_items_are_bounded_and_all_come_back_in_order() {
    // Every item spills; the ring's references (or the socket's room)
    // run out first.
    let ring = Ring::create(0, MIN_RING).unwrap();
    let item = |i: usize| vec![i as u8; MIN_RING / 2 + 1];
    let mut n = 0;
    while ring.put(&item(n), false, None).is_ok() {
        n += 1;
        assert!(n < 1000);
    }
    assert!(n >= 32, "{n}");
    for i in 0..n {
        assert_eq!(ring.get(false, None).unwrap(), item(i));
    }
    assert!(matches!(ring.get(false, None), Err(RingError::WouldBlock)));
    // The socket has room again.
    ring.put(&item(1), false, None).unwrap();
    assert_eq!(ring.get(false, None).unwrap(), item(1));
}

#[test]
fn a_bounded_ring_refuses_past_maxsize() {
    let ring = Ring::create(3, MIN_RING).unwrap();
    for i in 0..3u8 {
        ring.put(&[i], false, None).unwrap();
    }
    assert!(ring.is_full());
    assert!(matches!(ring.put(&[9], false, None), Err(RingError::WouldBlock)));
    let t = Instant::now();
    assert!(matches!(ring.put(&[9], true, Some(Duration::from_millis(50))), Err(RingError::WouldBlock)));
    assert!(t.elapsed() >= Duration::from_millis(50));
    assert_eq!(ring.get(false, None).unwrap(), [0]);
    ring.put(&[3], false, None).unwrap();
}

#[test]
fn threads_share_a_ring_losing_and_duplicating_nothing() {
    let ring = std::sync::Arc::new(Ring::create(16, 8192).unwrap());
    let producers: Vec<_> = (0..4u32)
        .map(|p| {
            let ring = ring.clone();
            std::thread::spawn(move || {
                for s in 0..2000u32 {
                    let mut b = p.to_le_bytes().to_vec();
                    b.extend_from_slice(&s.to_le_bytes());
                    ring.put(&b, true, None).unwrap();
                }
            })
        })
        .collect();
    let consumers: Vec<_> = (0..4)
        .map(|_| {
            let ring = ring.clone();
            std::thread::spawn(move || {
                let mut got = Vec::new();
                while let Ok(b) = ring.get(true, Some(Duration::from_millis(500))) {
                    let p = u32::from_le_bytes(b[..4].try_into().unwrap());
                    let s = u32::from_le_bytes(b[4..].try_into().unwrap());
                    got.push((p, s));
                }
                got
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    let mut all = std::collections::HashSet::new();
    for c in consumers {
        let got = c.join().unwrap();
        let mut last = std::collections::HashMap::new();
        for (p, s) in got {
            if let Some(prev) = last.insert(p, s) {
                assert!(prev < s);
            }
            assert!(all.insert((p, s)));
        }
    }
    assert_eq!(all.len(), 8000);
}

#[test]
fn attaching_checks_what_it_maps() {
    let fd = shm::memfd("not-a-queue", HEADER_LEN + MIN_RING).unwrap();
    let (tx, rx) = shm::spill_socket().unwrap();
    assert!(Ring::attach(fd, tx, rx).is_err());
    let ring = Ring::create(0, MIN_RING).unwrap();
    let [fd, tx, rx] = ring.fds().map(|fd| fd.try_clone_to_owned().unwrap());
    let other = Ring::attach(fd, tx, rx).unwrap();
    ring.put(b"x", false, None).unwrap();
    assert_eq!(other.get(false, None).unwrap(), b"x");
}

fn main() {
    let store = rollback::store::Store::open(std::path::Path::new("/tmp/big/.rollback")).unwrap();
    let m = store.list().unwrap().pop().unwrap();
    let chunks = &m.objects["contacts"].chunks[..20];
    let raws: Vec<Vec<u8>> = chunks.iter().map(|c| store.load_chunk(c).unwrap()).collect();
    let total: usize = raws.iter().map(|r| r.len()).sum();
    for level in [-5, -3, -1, 1, 2, 3] {
        let t = std::time::Instant::now();
        let mut out = 0;
        for r in &raws { out += zstd::bulk::compress(r, level).unwrap().len(); }
        let s = t.elapsed().as_secs_f64();
        let t = std::time::Instant::now();
        for r in &raws { let c = zstd::bulk::compress(r, level).unwrap(); std::hint::black_box(zstd::stream::decode_all(&c[..]).unwrap()); }
        let d = t.elapsed().as_secs_f64() - s;
        println!("level {level:>2}: {:.0} MB/s compress, ratio {:.2}, decompress {:.0} MB/s", total as f64 / s / 1e6, total as f64 / out as f64, total as f64 / d / 1e6);
    }
}

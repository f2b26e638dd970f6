//! `vk-sim`: the VK API simulator binary (filled in by the vk-sim issue).

fn main() {
    println!("vk-sim: not implemented yet");
}

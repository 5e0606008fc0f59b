import shutil

import pytest

from tests.conftest import leftovers
from vdlib.core.common import VdlibError
from vdlib.data.fetch import fetch, fetch_videos, source_kind
from vdlib.data.video import probe


def test_source_kinds():
    assert source_kind("demo") == "demo"
    assert source_kind("https://www.youtube.com/watch?v=abc") == "url"
    assert source_kind("http://example.org/a.mp4") == "url"
    assert source_kind("videos/me.mp4") == "local"


def test_local_file_is_copied_or_remuxed(tmp_path, landscape_video):
    same = fetch(str(landscape_video), tmp_path / "out" / "video.mp4")
    assert same.read_bytes() == landscape_video.read_bytes()
    remuxed = fetch(str(landscape_video), tmp_path / "out" / "video.mkv")
    info = probe(remuxed)
    assert "matroska" in info.container and info.codec == "h264" and (info.width, info.height) == (320, 240)
    assert leftovers(tmp_path) == []


def test_direct_url_over_http(tmp_path, http_root, landscape_video):
    root, base = http_root
    shutil.copy(landscape_video, root / "clip.mp4")
    out = fetch(f"{base}/clip.mp4", tmp_path / "raw" / "video.mkv")
    info = probe(out)
    assert (info.width, info.height) == (320, 240) and abs(info.duration_s - 2.0) < 0.1
    assert leftovers(tmp_path) == []


def test_page_that_embeds_a_video_goes_through_ytdlp(tmp_path, http_root, portrait_video):
    root, base = http_root
    shutil.copy(portrait_video, root / "clip.mkv")
    (root / "watch.html").write_text('<html><body><video src="clip.mkv"></video></body></html>')
    out = fetch(f"{base}/watch.html", tmp_path / "video.mkv")
    assert out.read_bytes() == portrait_video.read_bytes()


def test_demo_source(tmp_path):
    from vdlib.config import DemoConfig

    out = fetch("demo", tmp_path / "video.mkv", demo=DemoConfig(seconds=2, width=64, height=48))
    info = probe(out)
    assert (info.width, info.height) == (64, 48)


@pytest.mark.parametrize(
    ("make_source", "message"),
    [
        (lambda base, root: f"{base}/missing.mp4", "HTTP Error 404"),
        (lambda base, root: "http://127.0.0.1:9/video.mp4", "Connection refused"),
        (lambda base, root: f"{base}/notes.mp4", "the content is not a readable video"),
        (lambda base, root: f"{base}/page.html", "Unsupported URL"),
        (lambda base, root: str(root / "nothing-here.mp4"), "no such file"),
    ],
    ids=["http-404", "unreachable", "not-a-video", "page-without-video", "missing-local"],
)
def test_fetch_errors_are_one_line_and_leave_nothing(tmp_path, http_root, make_source, message):
    root, base = http_root
    (root / "notes.mp4").write_text("these are my notes, not a video\n" * 50)
    (root / "page.html").write_text("<html><body><p>nothing to see</p></body></html>")
    source = make_source(base, root)
    out_dir = tmp_path / "raw"
    with pytest.raises(VdlibError) as err:
        fetch(source, out_dir / "video.mkv")
    text = str(err.value)
    assert message in text and source in text and "\n" not in text
    assert not (out_dir / "video.mkv").exists()
    assert list(out_dir.iterdir()) == []


def test_bad_output_extension(tmp_path, landscape_video):
    with pytest.raises(VdlibError, match=r"output must end in one of \.mkv"):
        fetch(str(landscape_video), tmp_path / "video.avi")


def test_a_dataset_of_many_sources_fills_one_folder(tmp_path, http_root, landscape_video, portrait_video):
    """A list of sources: a playlist page (every entry), a local folder (every video) and a file."""
    root, base = http_root
    shutil.copy(landscape_video, root / "one.mp4")
    shutil.copy(portrait_video, root / "two.mkv")
    (root / "list.html").write_text('<video src="one.mp4"></video><video src="two.mkv"></video>')
    folder = tmp_path / "mine"
    folder.mkdir()
    shutil.copy(landscape_video, folder / "walk.mp4")
    shutil.copy(portrait_video, folder / "run.mkv")
    files = fetch_videos([f"{base}/list.html", str(folder), str(portrait_video)], tmp_path / "raw")
    assert [f.name for f in files] == ["list-1.mkv", "list-2.mkv", "portrait.mkv", "run.mkv", "walk.mkv"]
    sizes = {f.stem: (probe(f).width, probe(f).height) for f in files}
    assert sizes == {"list-1": (320, 240), "list-2": (120, 240), "portrait": (120, 240), "run": (120, 240),
                     "walk": (320, 240)}  # fmt: skip
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == [f.name for f in files]
    assert leftovers(tmp_path) == []


def test_a_failing_source_in_a_list_leaves_no_folder(tmp_path, landscape_video):
    with pytest.raises(VdlibError, match=r"cannot fetch .*nothing\.mp4: no such file or folder"):
        fetch_videos([str(landscape_video), str(tmp_path / "nothing.mp4")], tmp_path / "raw")
    assert not (tmp_path / "raw").exists() and leftovers(tmp_path) == []


def test_a_broken_video_in_a_folder_is_named(tmp_path, landscape_video):
    """Among a folder's videos, the one that is not a video is named, not the folder."""
    folder = tmp_path / "clips"
    folder.mkdir()
    for name in ("a.mp4", "c.mp4"):
        shutil.copy(landscape_video, folder / name)
    (folder / "b.mp4").write_bytes(b"\0" * 4096)  # a download cut off before its header
    with pytest.raises(VdlibError) as err:
        fetch_videos([str(folder)], tmp_path / "raw")
    assert str(err.value).startswith(f"cannot fetch {folder / 'b.mp4'}: the content is not a readable video")
    assert not (tmp_path / "raw").exists() and leftovers(tmp_path) == []

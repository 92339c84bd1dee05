//! Image folders: one sub-folder per class, PNG or JPEG files inside, as in
//! `root/<class>/<image>.png`. Classes are the sub-folder names sorted alphabetically (label =
//! index in that order); within a class the files are sorted by name, so the order of the
//! dataset is deterministic. A folder with images and no sub-folder (`root/<image>.png`, as
//! pytorch-fid reads samples) is one class named after the folder. Images are decoded in
//! parallel and stored as u8.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use rayon::prelude::*;

use crate::dataset::{Dataset, Pixels};
use crate::error::DatasetError;
use crate::split::Split;

/// How [`load_image_folder`] reads a folder.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FolderOptions {
    /// 1 = grayscale, 3 = RGB; `None` = 1 if the first image is grayscale, else 3. Alpha is
    /// dropped.
    pub channels: Option<usize>,
    /// `(height, width)` to resize every image to (bilinear, [`FilterType::Triangle`]); `None`
    /// keeps the size, which then must be the same for every image.
    pub resize: Option<(usize, usize)>,
    /// When set, images are read from the `train` or `test` sub-folder of the directory if it
    /// exists (as in `cifar10/train/<class>/*.jpg`).
    pub split: Option<Split>,
}

/// True when `path` has a PNG or JPEG extension (case-insensitive).
fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(OsStr::to_str)
        .map(|e| {
            let e = e.to_ascii_lowercase();
            e == "png" || e == "jpg" || e == "jpeg"
        })
        .unwrap_or(false)
}

/// The entries of `dir`, sorted by name.
fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, DatasetError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| DatasetError::io(dir, e))? {
        out.push(entry.map_err(|e| DatasetError::io(dir, e))?.path());
    }
    out.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(out)
}

/// The folder that holds the class folders.
fn resolve_root(dir: &Path, split: Option<Split>) -> Result<PathBuf, DatasetError> {
    let Some(split) = split else {
        return Ok(dir.to_path_buf());
    };
    let sub = dir.join(split.as_str());
    if sub.is_dir() {
        return Ok(sub);
    }
    let other = match split {
        Split::Train => Split::Test,
        Split::Test => Split::Train,
    };
    if dir.join(other.as_str()).is_dir() {
        return Err(DatasetError::Empty {
            path: dir.to_path_buf(),
            message: format!("has a `{other}` sub-folder but no `{split}` sub-folder"),
        });
    }
    Ok(dir.to_path_buf())
}

/// Decodes the image at `path` into 8-bit grayscale or RGB, interleaved (H, W, C).
fn decode(path: &Path, channels: usize) -> Result<(Vec<u8>, usize, usize), DatasetError> {
    let bytes = std::fs::read(path).map_err(|e| DatasetError::io(path, e))?;
    let img = image::load_from_memory(&bytes).map_err(|e| {
        DatasetError::format(path, None, "a readable PNG or JPEG image", e.to_string())
    })?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    let raw = if channels == 1 {
        img.into_luma8().into_raw()
    } else {
        img.into_rgb8().into_raw()
    };
    Ok((raw, h, w))
}

/// Bilinear resize of an interleaved 8-bit image.
fn resize(raw: Vec<u8>, channels: usize, from: (usize, usize), to: (usize, usize)) -> Vec<u8> {
    if from == to {
        return raw;
    }
    let (h, w) = (from.0 as u32, from.1 as u32);
    let (th, tw) = (to.0 as u32, to.1 as u32);
    if channels == 1 {
        let buf = image::GrayImage::from_raw(w, h, raw).expect("decoded size");
        image::imageops::resize(&buf, tw, th, FilterType::Triangle).into_raw()
    } else {
        let buf = image::RgbImage::from_raw(w, h, raw).expect("decoded size");
        image::imageops::resize(&buf, tw, th, FilterType::Triangle).into_raw()
    }
}

/// Writes an interleaved (H, W, C) image into `out` as (C, H, W).
fn to_planes(raw: &[u8], channels: usize, out: &mut [u8]) {
    if channels == 1 {
        out.copy_from_slice(raw);
        return;
    }
    let plane = out.len() / channels;
    let (r, rest) = out.split_at_mut(plane);
    let (g, b) = rest.split_at_mut(plane);
    for (i, px) in raw.chunks_exact(3).enumerate() {
        r[i] = px[0];
        g[i] = px[1];
        b[i] = px[2];
    }
}

/// Loads an image folder: `dir/<class>/<image>` (or `dir/<split>/<class>/<image>` when
/// [`FolderOptions::split`] is set and that folder exists). Files with extension `png`, `jpg`
/// or `jpeg` (any case) are images; other files and hidden folders are ignored.
///
/// Errors name the file: a file that cannot be read or decoded, an image whose size differs from
/// the first one when not resizing ([`DatasetError::Mismatch`], with the expected size). A
/// folder with no class sub-folder, a class with no image, or no image at all is
/// [`DatasetError::Empty`].
pub fn load_image_folder(dir: &Path, options: &FolderOptions) -> Result<Dataset, DatasetError> {
    let context = format!("image folder {}", dir.display());
    if let Some(c) = options.channels
        && c != 1
        && c != 3
    {
        return Err(DatasetError::param(
            &context,
            "channels",
            c,
            "1 (grayscale) or 3 (RGB)",
        ));
    }
    if let Some((h, w)) = options.resize
        && (h == 0 || w == 0 || h > u32::MAX as usize || w > u32::MAX as usize)
    {
        return Err(DatasetError::param(
            &context,
            "resize",
            format!("({h}, {w})"),
            "a (height, width) of at least 1 each",
        ));
    }
    let root = resolve_root(dir, options.split)?;

    let mut class_names = Vec::new();
    let mut files: Vec<(PathBuf, u32)> = Vec::new();
    let mut loose_images = Vec::new();
    for entry in sorted_entries(&root)? {
        let name = entry
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !entry.is_dir() {
            if is_image(&entry) {
                loose_images.push(entry);
            }
            continue;
        }
        if name.starts_with('.') {
            continue;
        }
        let label = class_names.len() as u32;
        let before = files.len();
        for file in sorted_entries(&entry)? {
            if is_image(&file) && file.is_file() {
                files.push((file, label));
            }
        }
        if files.len() == before {
            return Err(DatasetError::Empty {
                path: entry,
                message: "class folder with no PNG or JPEG image".to_string(),
            });
        }
        class_names.push(name);
    }
    if class_names.is_empty() {
        if loose_images.is_empty() {
            return Err(DatasetError::Empty {
                path: root,
                message: "no PNG or JPEG image, directly or in class sub-folders".to_string(),
            });
        }
        // A flat folder of images: one class, named after the folder.
        class_names.push(
            root.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "images".to_string()),
        );
        files = loose_images.into_iter().map(|p| (p, 0)).collect();
    }

    // The first image fixes the channels (when not given) and the size (when not resizing).
    let (first_path, _) = &files[0];
    let bytes = std::fs::read(first_path).map_err(|e| DatasetError::io(first_path, e))?;
    let first = image::load_from_memory(&bytes).map_err(|e| {
        DatasetError::format(
            first_path,
            None,
            "a readable PNG or JPEG image",
            e.to_string(),
        )
    })?;
    let channels = options
        .channels
        .unwrap_or(if first.color().has_color() { 3 } else { 1 });
    let size = options
        .resize
        .unwrap_or((first.height() as usize, first.width() as usize));
    drop((bytes, first));
    let image_len = channels * size.0 * size.1;

    let mut pixels = vec![0u8; files.len() * image_len];
    let failure = pixels
        .par_chunks_mut(image_len)
        .zip(files.par_iter())
        .enumerate()
        .filter_map(|(i, (out, (path, _)))| {
            let result = decode(path, channels).and_then(|(raw, h, w)| {
                let raw = if options.resize.is_some() {
                    resize(raw, channels, (h, w), size)
                } else if (h, w) != size {
                    return Err(DatasetError::Mismatch {
                        path: path.clone(),
                        message: format!(
                            "image is {h}x{w} (height x width) but the folder's images are \
                             {}x{} like {}; set a resize to mix sizes",
                            size.0,
                            size.1,
                            first_path.display()
                        ),
                    });
                } else {
                    raw
                };
                to_planes(&raw, channels, out);
                Ok(())
            });
            result.err().map(|e| (i, e))
        })
        .min_by_key(|(i, _)| *i);
    if let Some((_, e)) = failure {
        return Err(e);
    }
    let labels = files.iter().map(|(_, l)| *l).collect();
    Ok(Dataset::new(
        root.display().to_string(),
        [channels, size.0, size.1],
        Pixels::U8(pixels),
        Some(labels),
    )?
    .with_class_names(class_names))
}

#[cfg(test)]
mod tests {
    use image::{GrayImage, Luma, Rgb, RgbImage};

    use super::*;

    /// An RGB image whose pixel (x, y) is (v, x, y).
    fn rgb(w: u32, h: u32, v: u8) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| Rgb([v, x as u8, y as u8]))
    }

    fn classes(root: &Path, layout: &[(&str, &[&str])]) {
        for (class, files) in layout {
            let d = root.join(class);
            std::fs::create_dir_all(&d).unwrap();
            for (i, f) in files.iter().enumerate() {
                rgb(3, 2, 10 * i as u8 + 1).save(d.join(f)).unwrap();
            }
        }
    }

    #[test]
    fn loads_sorted_classes_and_files_as_chw() {
        let dir = tempfile::tempdir().unwrap();
        // Written in an order that differs from the sorted one.
        classes(
            dir.path(),
            &[
                ("zebra", &["b.png"]),
                ("ant", &["2.png", "10.PNG", "1.png"]),
            ],
        );
        std::fs::write(dir.path().join("ant/notes.txt"), "not an image").unwrap();
        std::fs::create_dir(dir.path().join(".hidden")).unwrap();
        let d = load_image_folder(dir.path(), &FolderOptions::default()).unwrap();
        assert_eq!(d.class_names().unwrap(), &["ant", "zebra"]);
        assert_eq!(d.labels().unwrap(), &[0, 0, 0, 1]);
        assert_eq!(d.shape(), [3, 2, 3]);
        let Pixels::U8(p) = d.pixels() else {
            panic!("u8 storage")
        };
        // Sorted within "ant": 1.png (v=21), 10.PNG (v=11), 2.png (v=1).
        let firsts: Vec<u8> = p.chunks(18).map(|img| img[0]).collect();
        assert_eq!(firsts, vec![21, 11, 1, 1]);
        // (C, H, W): the G plane holds x, the B plane holds y.
        assert_eq!(&p[6..12], &[0, 1, 2, 0, 1, 2]);
        assert_eq!(&p[12..18], &[0, 0, 0, 1, 1, 1]);
    }

    #[test]
    fn channels_are_inferred_or_converted() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("a")).unwrap();
        GrayImage::from_fn(4, 4, |x, _| Luma([x as u8 * 50]))
            .save(dir.path().join("a/g.png"))
            .unwrap();
        let gray = load_image_folder(dir.path(), &FolderOptions::default()).unwrap();
        assert_eq!(gray.shape(), [1, 4, 4]);
        let opts = FolderOptions {
            channels: Some(3),
            ..Default::default()
        };
        let color = load_image_folder(dir.path(), &opts).unwrap();
        assert_eq!(color.shape(), [3, 4, 4]);
        let Pixels::U8(p) = color.pixels() else {
            panic!("u8")
        };
        assert_eq!(p[3], 150);
        assert_eq!(p[16 + 3], 150);
        let bad = FolderOptions {
            channels: Some(2),
            ..Default::default()
        };
        assert!(matches!(
            load_image_folder(dir.path(), &bad),
            Err(DatasetError::InvalidParam { .. })
        ));
    }

    #[test]
    fn mixed_sizes_need_a_resize() {
        let dir = tempfile::tempdir().unwrap();
        classes(dir.path(), &[("a", &["1.png"])]);
        rgb(5, 5, 0).save(dir.path().join("a/2.jpg")).unwrap();
        let err = load_image_folder(dir.path(), &FolderOptions::default()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("2.jpg") && text.contains("2x3"), "{text}");
        let opts = FolderOptions {
            resize: Some((4, 6)),
            ..Default::default()
        };
        let d = load_image_folder(dir.path(), &opts).unwrap();
        assert_eq!(d.shape(), [3, 4, 6]);
        assert_eq!(d.len(), 2);
    }

    #[test]
    fn unreadable_and_empty_folders_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let err = load_image_folder(dir.path(), &FolderOptions::default()).unwrap_err();
        assert!(matches!(err, DatasetError::Empty { .. }), "{err}");
        // Loose images beside class folders are ignored; alone they are a flat folder (see
        // `a_flat_folder_of_images_is_one_class`).
        rgb(2, 2, 0).save(dir.path().join("loose.png")).unwrap();
        std::fs::create_dir(dir.path().join("empty")).unwrap();
        let err = load_image_folder(dir.path(), &FolderOptions::default()).unwrap_err();
        assert!(
            matches!(&err, DatasetError::Empty { path, .. } if path.ends_with("empty")),
            "{err}"
        );
        classes(dir.path(), &[("empty", &["ok.png"])]);
        std::fs::write(dir.path().join("empty/zz.jpeg"), b"garbage").unwrap();
        let err = load_image_folder(dir.path(), &FolderOptions::default()).unwrap_err();
        assert!(err.to_string().contains("zz.jpeg"), "{err}");
        assert!(load_image_folder(&dir.path().join("nope"), &FolderOptions::default()).is_err());
    }

    #[test]
    fn split_sub_folders_are_used() {
        let dir = tempfile::tempdir().unwrap();
        classes(
            &dir.path().join("train"),
            &[("a", &["1.jpg", "2.jpg"]), ("b", &["1.jpg"])],
        );
        let train = FolderOptions {
            split: Some(Split::Train),
            ..Default::default()
        };
        let d = load_image_folder(dir.path(), &train).unwrap();
        assert_eq!(d.len(), 3);
        assert_eq!(d.class_names().unwrap(), &["a", "b"]);
        let test = FolderOptions {
            split: Some(Split::Test),
            ..Default::default()
        };
        let err = load_image_folder(dir.path(), &test).unwrap_err();
        assert!(err.to_string().contains("`test`"), "{err}");
        // Without split folders, the directory itself is used.
        let d = load_image_folder(&dir.path().join("train"), &test).unwrap();
        assert_eq!(d.len(), 3);
    }

    #[test]
    fn a_flat_folder_of_images_is_one_class() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("samples");
        std::fs::create_dir_all(&root).unwrap();
        for (i, name) in ["b.png", "a.png", "c.png"].iter().enumerate() {
            rgb(3, 2, i as u8).save(root.join(name)).unwrap();
        }
        std::fs::write(root.join("notes.txt"), "not an image").unwrap();
        let d = load_image_folder(&root, &FolderOptions::default()).unwrap();
        assert_eq!((d.len(), d.shape()), (3, [3, 2, 3]));
        assert_eq!(d.class_names().unwrap(), &["samples"]);
        // Sorted by name: a.png (written second, value 1) first.
        let mut first = vec![0.0; 18];
        d.write_image(0, &mut first);
        assert_eq!(first[0], 1.0 / 255.0);
        let empty = dir.path().join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        let err = load_image_folder(&empty, &FolderOptions::default()).unwrap_err();
        assert!(err.to_string().contains("no PNG or JPEG image"), "{err}");
    }
}

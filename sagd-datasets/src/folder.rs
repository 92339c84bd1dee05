//! Image folders: one sub-folder per class, PNG or JPEG files inside, as in
//! `root/<class>/<image>.png`. Classes are the sub-folder names sorted alphabetically (label =
//! index in that order); within a class the files are sorted by name, so the order of the
//! dataset is deterministic. A folder with images and no sub-folder (`root/<image>.png`, as
//! pytorch-fid reads samples) is one class named after the folder.
//!
//! Images are decoded in parallel and stored as u8. The channel count never depends on the
//! order of the files: one colour image (RGB, RGBA, palette) makes the whole folder RGB, its
//! grey images then replicated into the three channels (as pytorch-fid's `convert('RGB')`),
//! and a folder of grey images alone is read as one channel. Every image is turned upright
//! as its EXIF (or other metadata) orientation says, as image viewers do, and sizes are the
//! displayed ones.

use std::ffi::OsStr;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageError, ImageReader};
use rayon::prelude::*;

use crate::dataset::{Dataset, Pixels};
use crate::error::DatasetError;
use crate::split::Split;

/// How [`load_image_folder`] reads a folder.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FolderOptions {
    /// 1 = grayscale, 3 = RGB: every image is converted to that count. `None` = 3 if any image
    /// of the folder has colour (grey images are then replicated into the three channels), 1
    /// if all are grey; the order of the files never matters. Alpha is dropped.
    pub channels: Option<usize>,
    /// `(height, width)` to resize every image to (bilinear, [`FilterType::Triangle`]), after
    /// its orientation is applied; `None` keeps the size, which then must be the same for
    /// every image (as displayed, after the orientation).
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

/// The images of the class folder `dir`, sorted by name; none is [`DatasetError::Empty`].
fn class_images(dir: &Path) -> Result<Vec<PathBuf>, DatasetError> {
    let mut images = sorted_entries(dir)?;
    images.retain(|f| is_image(f) && f.is_file());
    if images.is_empty() {
        return Err(DatasetError::Empty {
            path: dir.to_path_buf(),
            message: "class folder with no PNG or JPEG image".to_string(),
        });
    }
    Ok(images)
}

/// An image file and its class label.
type Labelled = (PathBuf, u32);

/// The class names and the `(file, label)` pairs under `root`: class sub-folders (hidden ones
/// ignored), or the images directly in `root` as one class when it has no sub-folder.
fn list_files(root: &Path) -> Result<(Vec<String>, Vec<Labelled>), DatasetError> {
    let mut class_names = Vec::new();
    let mut files: Vec<Labelled> = Vec::new();
    let mut loose_images = Vec::new();
    for entry in sorted_entries(root)? {
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
        files.extend(class_images(&entry)?.into_iter().map(|f| (f, label)));
        class_names.push(name);
    }
    if !class_names.is_empty() {
        return Ok((class_names, files));
    }
    if loose_images.is_empty() {
        return Err(DatasetError::Empty {
            path: root.to_path_buf(),
            message: "no PNG or JPEG image, directly or in class sub-folders".to_string(),
        });
    }
    // A flat folder of images: one class, named after the folder.
    let name = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "images".to_string());
    Ok((
        vec![name],
        loose_images.into_iter().map(|p| (p, 0)).collect(),
    ))
}

/// A [`DatasetError::Format`] for a file the image crate cannot read.
fn unreadable(path: &Path, e: ImageError) -> DatasetError {
    DatasetError::format(
        path,
        None,
        "a readable PNG or JPEG image",
        e.to_string().trim_end(),
    )
}

/// A decoder for the image at `path`, its format guessed from the content, and the
/// orientation (EXIF or the format's own) it reports.
fn open_decoder(path: &Path) -> Result<(impl ImageDecoder, Orientation), DatasetError> {
    // Read whole: faster than a buffered file for the small images of datasets.
    let bytes = std::fs::read(path).map_err(|e| DatasetError::io(path, e))?;
    let ask = !jpeg_without_exif(&bytes);
    let mut decoder = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| DatasetError::io(path, e))?
        .into_decoder()
        .map_err(|e| unreadable(path, e))?;
    let orientation = if ask {
        decoder.orientation().map_err(|e| unreadable(path, e))?
    } else {
        Orientation::NoTransforms
    };
    Ok((decoder, orientation))
}

/// True only for a JPEG whose header segments (before the first scan) hold no `Exif` APP1
/// segment, so that its orientation is known to be upright without asking the JPEG decoder,
/// which parses all the headers again for it (10 to 30% of the decoding time of a 32x32 JPEG).
/// Anything else, malformed segments included, is false: the decoder is asked.
fn jpeg_without_exif(bytes: &[u8]) -> bool {
    if !bytes.starts_with(&[0xff, 0xd8]) {
        return false;
    }
    let mut i = 2;
    while let Some(&[0xff, marker]) = bytes.get(i..i + 2) {
        match marker {
            0xff => i += 1,               // fill byte
            0x01 | 0xd0..=0xd7 => i += 2, // no length
            0xda => return true,          // start of scan: headers end
            0xe1 if bytes.get(i + 4..i + 10) == Some(&b"Exif\0\0"[..]) => return false,
            _ => match bytes.get(i + 2..i + 4) {
                Some(&[hi, lo]) => i += 2 + usize::from(u16::from_be_bytes([hi, lo])),
                _ => return false,
            },
        }
    }
    false
}

/// The `(height, width)` of the image at `path` as displayed (its orientation applied), read
/// from its header.
fn displayed_size(path: &Path) -> Result<(usize, usize), DatasetError> {
    let (decoder, orientation) = open_decoder(path)?;
    let (w, h) = decoder.dimensions();
    let (w, h) = (w as usize, h as usize);
    let turned = matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    );
    Ok(if turned { (w, h) } else { (h, w) })
}

/// An image decoded to 8 bits, upright.
struct Decoded {
    /// Interleaved (H, W, C) pixels.
    raw: Vec<u8>,
    /// 1 (grey) or 3 (RGB).
    channels: usize,
    /// `(height, width)` as displayed.
    size: (usize, usize),
}

/// Decodes the image at `path` and turns it upright as its orientation says: into `channels`
/// when given (colour converted to luma, grey replicated into RGB), else into 1 channel for a
/// grey image (with or without alpha) and 3 for a colour one (RGB, RGBA, palette).
fn decode(path: &Path, channels: Option<usize>) -> Result<Decoded, DatasetError> {
    let (decoder, orientation) = open_decoder(path)?;
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| unreadable(path, e))?;
    img.apply_orientation(orientation);
    let size = (img.height() as usize, img.width() as usize);
    let channels = channels.unwrap_or(if img.color().has_color() { 3 } else { 1 });
    let raw = if channels == 1 {
        img.into_luma8().into_raw()
    } else {
        img.into_rgb8().into_raw()
    };
    Ok(Decoded {
        raw,
        channels,
        size,
    })
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

/// How the images of a folder are read and stored.
#[derive(Debug, Clone, Copy)]
struct Target<'a> {
    /// The channel count asked for ([`FolderOptions::channels`]).
    channels: Option<usize>,
    /// `(height, width)` of every image.
    size: (usize, usize),
    /// Whether images are resized to `size` (else they must have it).
    resize: bool,
    /// The image that fixed `size` when not resizing, named in size errors.
    first: &'a Path,
}

/// Decodes the image at `path` into the start of `out` as (C, H, W) and returns its channel
/// count C (1 or 3 when `target` asks for none).
fn load_one(path: &Path, target: Target, out: &mut [u8]) -> Result<usize, DatasetError> {
    let img = decode(path, target.channels)?;
    let raw = if target.resize {
        resize(img.raw, img.channels, img.size, target.size)
    } else if img.size != target.size {
        let ((h, w), (eh, ew)) = (img.size, target.size);
        return Err(DatasetError::Mismatch {
            path: path.to_path_buf(),
            message: format!(
                "image is {h}x{w} (height x width) but the folder's images are {eh}x{ew} like \
                 {}; set a resize to mix sizes",
                target.first.display()
            ),
        });
    } else {
        img.raw
    };
    to_planes(&raw, img.channels, &mut out[..raw.len()]);
    Ok(img.channels)
}

/// Decodes all `files` in parallel into one (N, C, H, W) buffer and returns it with C; the
/// error is the first one in file order.
///
/// Without an asked channel count, every image gets an RGB slot and a grey image fills only
/// its first plane; [`settle_channels`] then fixes the count from all images, whatever their
/// order. A colour folder so costs nothing more than before; an all-grey one briefly holds
/// three times its final size.
fn load_all(files: &[Labelled], target: Target) -> Result<(Vec<u8>, usize), DatasetError> {
    let slot = target.channels.unwrap_or(3) * target.size.0 * target.size.1;
    let mut pixels = vec![0u8; files.len() * slot];
    let written: Vec<Result<usize, DatasetError>> = pixels
        .par_chunks_mut(slot)
        .zip(files.par_iter())
        .map(|(out, (path, _))| load_one(path, target, out))
        .collect();
    let written = written.into_iter().collect::<Result<Vec<_>, _>>()?;
    let channels = match target.channels {
        Some(c) => c,
        None => settle_channels(&mut pixels, &written, target.size.0 * target.size.1),
    };
    Ok((pixels, channels))
}

/// The folder's channel count from the count each image was decoded to (`written`), with
/// `pixels` (one RGB slot of `plane * 3` bytes per image) made to match: 3 when any image has
/// colour, the first plane of every grey image then copied into its other two (as
/// pytorch-fid's `convert('RGB')`); 1 when all are grey, the slots then packed to one plane.
fn settle_channels(pixels: &mut Vec<u8>, written: &[usize], plane: usize) -> usize {
    if written.contains(&3) {
        pixels
            .par_chunks_mut(3 * plane)
            .zip(written.par_iter())
            .filter(|(_, c)| **c == 1)
            .for_each(|(img, _)| {
                let (grey, rest) = img.split_at_mut(plane);
                rest[..plane].copy_from_slice(grey);
                rest[plane..].copy_from_slice(grey);
            });
        return 3;
    }
    for i in 1..written.len() {
        pixels.copy_within(3 * i * plane..(3 * i + 1) * plane, i * plane);
    }
    pixels.truncate(written.len() * plane);
    pixels.shrink_to_fit();
    1
}

/// Checks the options' values.
fn check_options(dir: &Path, options: &FolderOptions) -> Result<(), DatasetError> {
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
    Ok(())
}

/// Loads an image folder: `dir/<class>/<image>` (or `dir/<split>/<class>/<image>` when
/// [`FolderOptions::split`] is set and that folder exists). Files with extension `png`, `jpg`
/// or `jpeg` (any case) are images; other files and hidden folders are ignored.
///
/// Without [`FolderOptions::channels`], the folder is RGB when any of its images has colour
/// (grey images replicated into the three channels) and grayscale only when all are grey,
/// whatever the order of the files. Every image is turned upright as its EXIF orientation
/// says, and sizes are compared as displayed.
///
/// Errors name the file: a file that cannot be read or decoded, an image whose size differs from
/// the first one when not resizing ([`DatasetError::Mismatch`], with the expected size). A
/// folder with no class sub-folder, a class with no image, or no image at all is
/// [`DatasetError::Empty`].
pub fn load_image_folder(dir: &Path, options: &FolderOptions) -> Result<Dataset, DatasetError> {
    check_options(dir, options)?;
    let root = resolve_root(dir, options.split)?;
    let (class_names, files) = list_files(&root)?;
    let first = &files[0].0;
    let target = Target {
        channels: options.channels,
        size: match options.resize {
            Some(size) => size,
            None => displayed_size(first)?,
        },
        resize: options.resize.is_some(),
        first,
    };
    let (pixels, channels) = load_all(&files, target)?;
    let labels = files.iter().map(|(_, l)| *l).collect();
    Ok(Dataset::new(
        root.display().to_string(),
        [channels, target.size.0, target.size.1],
        Pixels::U8(pixels),
        Some(labels),
    )?
    .with_class_names(class_names))
}

#[cfg(test)]
mod tests {
    use image::codecs::jpeg::JpegEncoder;
    use image::codecs::png::PngEncoder;
    use image::{GrayAlphaImage, GrayImage, ImageEncoder, Luma, LumaA, Rgb, RgbImage};

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

    #[test]
    fn only_jpegs_without_exif_skip_the_orientation_lookup() {
        let plain = jpeg(&red_corner(), None);
        assert!(jpeg_without_exif(&plain));
        assert!(!jpeg_without_exif(&jpeg(&red_corner(), Some(1))));
        // Not a JPEG, or segments that do not parse: the decoder is asked.
        assert!(!jpeg_without_exif(b"\x89PNG\r\n\x1a\n"));
        assert!(!jpeg_without_exif(&plain[..plain.len().min(21)]));
        assert!(!jpeg_without_exif(&[0xff, 0xd8, 0x12, 0x34]));
    }

    /// A grey image whose pixel (x, y) is `16 * y + x`.
    fn grey(w: u32, h: u32) -> GrayImage {
        GrayImage::from_fn(w, h, |x, y| Luma([(16 * y + x) as u8]))
    }

    /// The images of `d`, as u8 (C, H, W) slices.
    fn images(d: &Dataset) -> Vec<&[u8]> {
        let Pixels::U8(p) = d.pixels() else {
            panic!("u8 storage")
        };
        p.chunks(d.image_len()).collect()
    }

    /// pytorch-fid#35: one grey PNG among five RGB ones gives an RGB folder whether the grey one
    /// sorts first or last, the grey values replicated into the three channels.
    #[test]
    fn one_grey_image_among_rgb_ones_gives_rgb_in_any_order() {
        let mut loaded = Vec::new();
        for grey_name in ["0_grey.png", "9_grey.png"] {
            let dir = tempfile::tempdir().unwrap();
            for v in 1..=5u8 {
                rgb(16, 16, 40 * v)
                    .save(dir.path().join(format!("{v}.png")))
                    .unwrap();
            }
            grey(16, 16).save(dir.path().join(grey_name)).unwrap();
            let d = load_image_folder(dir.path(), &FolderOptions::default()).unwrap();
            assert_eq!((d.len(), d.shape()), (6, [3, 16, 16]), "{grey_name}");
            loaded.push(d);
        }
        let (first, last) = (images(&loaded[0]), images(&loaded[1]));
        // The same six images, the grey one moved from the front to the back.
        assert_eq!(first[0], last[5]);
        assert_eq!(&first[1..], &last[..5]);
        let g = grey(16, 16).into_raw();
        for c in 0..3 {
            assert_eq!(
                &first[0][c * 256..(c + 1) * 256],
                g.as_slice(),
                "channel {c}"
            );
        }
        // The colour images keep their colour: R = 40 v, G = x, B = y.
        let p = last[2];
        assert_eq!((p[0], p[256 + 5], p[512 + 16 * 7]), (120, 5, 7));
    }

    #[test]
    fn a_grey_class_beside_a_colour_class_is_rgb_and_channels_still_convert() {
        let dir = tempfile::tempdir().unwrap();
        for class in ["a_grey", "b_colour"] {
            std::fs::create_dir(dir.path().join(class)).unwrap();
        }
        grey(4, 4).save(dir.path().join("a_grey/1.png")).unwrap();
        rgb(4, 4, 200)
            .save(dir.path().join("b_colour/1.jpg"))
            .unwrap();
        let d = load_image_folder(dir.path(), &FolderOptions::default()).unwrap();
        assert_eq!(d.shape(), [3, 4, 4]);
        assert_eq!(images(&d)[0][16 + 5], 16 + 1);
        // An explicit count converts every image to it, colour to luma included.
        let one = FolderOptions {
            channels: Some(1),
            ..Default::default()
        };
        let d = load_image_folder(dir.path(), &one).unwrap();
        assert_eq!(d.shape(), [1, 4, 4]);
        assert_eq!(images(&d)[0], grey(4, 4).into_raw().as_slice());
    }

    #[test]
    fn an_all_grey_folder_stays_one_channel() {
        let dir = tempfile::tempdir().unwrap();
        grey(16, 16).save(dir.path().join("0.png")).unwrap();
        // Grey with alpha is grey too: the alpha is dropped.
        GrayAlphaImage::from_fn(16, 16, |x, _| LumaA([x as u8, 7]))
            .save(dir.path().join("1.png"))
            .unwrap();
        let d = load_image_folder(dir.path(), &FolderOptions::default()).unwrap();
        assert_eq!((d.len(), d.shape()), (2, [1, 16, 16]));
        let imgs = images(&d);
        assert_eq!(imgs[0], grey(16, 16).into_raw().as_slice());
        assert_eq!(&imgs[1][16..32], (0..16).collect::<Vec<u8>>().as_slice());
    }

    /// A big-endian TIFF block holding one IFD entry: Orientation (0x0112) = `orientation`.
    fn exif_tiff(orientation: u16) -> Vec<u8> {
        let mut t = b"MM\0\x2a".to_vec();
        t.extend(8u32.to_be_bytes()); // offset of the IFD
        t.extend(1u16.to_be_bytes()); // one entry
        t.extend([0x01, 0x12, 0, 3, 0, 0, 0, 1]); // tag, type SHORT, count 1
        t.extend(orientation.to_be_bytes());
        t.extend([0, 0]); // value padding
        t.extend(0u32.to_be_bytes()); // no next IFD
        t
    }

    /// `img` as a JPEG (quality 100), with an APP1 `Exif` segment carrying `orientation`
    /// spliced after the SOI marker when given.
    fn jpeg(img: &RgbImage, orientation: Option<u16>) -> Vec<u8> {
        let mut bytes = Vec::new();
        JpegEncoder::new_with_quality(&mut bytes, 100)
            .encode_image(img)
            .unwrap();
        let Some(o) = orientation else {
            return bytes;
        };
        let tiff = exif_tiff(o);
        let mut app1 = vec![0xff, 0xe1];
        app1.extend((2 + 6 + tiff.len() as u16).to_be_bytes());
        app1.extend(b"Exif\0\0");
        app1.extend(tiff);
        assert_eq!(&bytes[..2], &[0xff, 0xd8], "SOI");
        bytes.splice(2..2, app1);
        bytes
    }

    /// A 16x8 (width x height) image, red in its stored top-left 8x4 quadrant, blue elsewhere.
    fn red_corner() -> RgbImage {
        RgbImage::from_fn(16, 8, |x, y| {
            if x < 8 && y < 4 {
                Rgb([230, 20, 20])
            } else {
                Rgb([20, 20, 230])
            }
        })
    }

    /// datumaro#1756: a JPEG stored 16x8 with EXIF Orientation = 6 (rotate 90° clockwise to
    /// display) loads as displayed, 8 wide and 16 high, its stored top-left corner at the
    /// top right, and sits beside an upright 8x16 image.
    #[test]
    fn exif_orientation_is_applied_as_viewers_show_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a_turned.jpg"),
            jpeg(&red_corner(), Some(6)),
        )
        .unwrap();
        let d = load_image_folder(dir.path(), &FolderOptions::default()).unwrap();
        assert_eq!((d.len(), d.shape()), (1, [3, 16, 8]));
        let p = images(&d)[0];
        let red_at = |x: usize, y: usize| {
            let (r, b) = (p[y * 8 + x], p[2 * 128 + y * 8 + x]);
            assert!(r.abs_diff(b) > 120, "({x}, {y}): r {r} b {b}");
            r > b
        };
        // Quadrant centres: red at the top right only.
        assert!(red_at(6, 2) && red_at(5, 5));
        assert!(!red_at(1, 2) && !red_at(1, 13) && !red_at(6, 13));

        let upright = RgbImage::from_fn(8, 16, |_, _| Rgb([20, 200, 20]));
        std::fs::write(dir.path().join("b_upright.jpg"), jpeg(&upright, None)).unwrap();
        let d = load_image_folder(dir.path(), &FolderOptions::default()).unwrap();
        assert_eq!((d.len(), d.shape()), (2, [3, 16, 8]));
        assert_eq!(images(&d)[0], p);

        // Sizes are compared as displayed: the stored size of the turned one is now the odd one.
        std::fs::remove_file(dir.path().join("b_upright.jpg")).unwrap();
        std::fs::write(dir.path().join("b_wide.jpg"), jpeg(&red_corner(), None)).unwrap();
        let err = load_image_folder(dir.path(), &FolderOptions::default()).unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, DatasetError::Mismatch { .. })
                && text.contains("b_wide.jpg")
                && text.contains("8x16 (height x width) but the folder's images are 16x8"),
            "{text}"
        );
        // A resize applies to the displayed image.
        let opts = FolderOptions {
            resize: Some((32, 16)),
            ..Default::default()
        };
        let d = load_image_folder(dir.path(), &opts).unwrap();
        assert_eq!(d.shape(), [3, 32, 16]);
        let p = images(&d)[0];
        assert!(
            p[4 * 16 + 13] > 150 && p[2 * 512 + 4 * 16 + 13] < 100,
            "top right is red"
        );
    }

    /// Orientation from any format that carries it: a PNG with an `eXIf` chunk, Orientation =
    /// 8 (rotate 90° counter-clockwise), exactly.
    #[test]
    fn png_exif_orientation_is_applied_too() {
        let dir = tempfile::tempdir().unwrap();
        let stored = rgb(3, 2, 9);
        let mut bytes = Vec::new();
        let mut encoder = PngEncoder::new(&mut bytes);
        encoder.set_exif_metadata(exif_tiff(8)).unwrap();
        encoder
            .write_image(stored.as_raw(), 3, 2, image::ExtendedColorType::Rgb8)
            .unwrap();
        std::fs::write(dir.path().join("turned.png"), bytes).unwrap();
        let d = load_image_folder(dir.path(), &FolderOptions::default()).unwrap();
        assert_eq!(d.shape(), [3, 3, 2]);
        // Displayed (x', y') is stored (x = W - 1 - y', y = x'): G holds x, B holds y.
        let p = images(&d)[0];
        assert_eq!(&p[6..12], &[2, 2, 1, 1, 0, 0]);
        assert_eq!(&p[12..18], &[0, 1, 0, 1, 0, 1]);
    }
}

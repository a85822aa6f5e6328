from litevit.labels import ade20k_palette, class_names, imagenet_synsets


def test_imagenet_names_are_the_1000_sorted_synsets():
    synsets = imagenet_synsets()
    assert len(synsets) == 1000 == len(set(synsets))
    assert synsets == sorted(synsets)
    names = class_names("imagenet1k")
    assert names[0] == "tench" and names[207] == "golden retriever" and names[999] == "toilet tissue"


def test_ade20k_names_and_palette():
    names = class_names("ade20k150")
    assert len(names) == 150 and names[0] == "wall" and names[12] == "person" and names[-1] == "flag"
    palette = ade20k_palette()
    assert len(palette) == 150 and all(len(c) == 3 and all(0 <= v <= 255 for v in c) for c in palette)


def test_segmentation_label_sets_from_mmseg_0_24():
    from litevit.labels import REDUCE_ZERO_LABEL, SEGMENTATION_LABEL_SETS, palette

    coco = class_names("cocostuff171")
    assert len(coco) == 171 and coco[0] == "person" and coco[79] == "toothbrush" and coco[-1] == "wood"
    context = class_names("pascal_context60")
    assert len(context) == 60 and context[0] == "background" and context[-1] == "wood"
    assert class_names("pascal_context59") == context[1:]
    assert palette("pascal_context59") == palette("pascal_context60")[1:]
    for label_set in SEGMENTATION_LABEL_SETS:
        colours = palette(label_set)
        assert len(colours) == len(class_names(label_set))
        assert all(len(c) == 3 and all(0 <= v <= 255 for v in c) for c in colours)
    # mmseg's dataset classes: ADE20K, COCO-Stuff-10k (0 = unlabelled) and Context-59 drop label 0.
    assert REDUCE_ZERO_LABEL == {
        "ade20k150": True,
        "cocostuff171": True,
        "pascal_context60": False,
        "pascal_context59": True,
    }

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

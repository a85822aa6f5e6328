"""tegrastats parser on real lines from JetPack 4, 5 and 6, and the background sampler.

Where each line comes from (copied verbatim from public captures):

- JP4_TX2: Jetson TX2, JetPack 4 (L4T r32) format without units, quoted in
  github.com/henrygd/beszel pull request #1631 ("Jetson tegrastats regex pre jetpack5").
- JP5_AGX_ORIN: Jetson AGX Orin 64GB, `sudo tegrastats --interval 100`, from
  github.com/Muxindawang/jetson_dla_tutorial README.md. The README does not name its L4T
  release; the line has the r35 (JetPack 5) shape: RAM total 62780MB as in the r35 example
  line of the issue brief (r36 AGX Orin 64GB reports 62841MB), upper-case thermal zones
  (CV0@, CPU@, SOC2@) where r36 prints lower-case ones, GR3D_FREQ load@[gpc0,gpc1].
- JP6_AGX_ORIN: Jetson AGX Orin 64GB on "R36 (release), REVISION: 4.4" (JetPack 6.2), from
  the parser tests of github.com/lesomnus/tegra-exporter (stats package, Go).
- JP6_ORIN_NANO: Jetson Orin Nano/NX on JetPack 6 with the VDD_IN input rail, quoted in
  github.com/rbonghi/jetson_stats issue #624.
Field meanings: NVIDIA Jetson Linux Developer Guide, "Tegrastats Utility" (r35.4.1 and r36.x).
"""

import sys
import textwrap
import time

import pytest

from litevit.runtime.tegrastats import TegrastatsSampler, parse_tegrastats_line, summarize_samples

JP4_TX2 = (
    "RAM 3276/7859MB (lfb 5x4MB) SWAP 1626/12122MB (cached 181MB) "
    "CPU [44%@1421,49%@2031,67%@2034,17%@1420,25%@1419,8%@1420] EMC_FREQ 1%@1866 GR3D_FREQ 0%@114 "
    "APE 150 MTS fg 1% bg 1% PLL@42.5C MCPU@42.5C PMIC@50C Tboard@38C GPU@39.5C BCPU@42.5C "
    "thermal@41.3C Tdiode@39.25C VDD_SYS_GPU 182/182 VDD_SYS_SOC 730/730 VDD_4V0_WIFI 0/0 "
    "VDD_IN 5297/5297 VDD_SYS_CPU 1917/1917 VDD_SYS_DDR 1241/1241"
)
JP5_AGX_ORIN = (
    "11-21-2025 08:49:48 RAM 13983/62780MB (lfb 424x4MB) SWAP 126/31390MB (cached 0MB) "
    "CPU [90%@2201,100%@2201,100%@2201,100%@2201,100%@2201,100%@2201,100%@2201,100%@2201,"
    "100%@2201,100%@2201,100%@2201,100%@2201] EMC_FREQ 1%@2133 GR3D_FREQ 14%@[407,407] "
    "VIC_FREQ 115 NVDLA0_FREQ @1600 APE 174 CV0@73.625C CPU@77.281C Tboard@62C SOC2@70C "
    "Tdiode@62.25C SOC0@69.531C CV1@72.5C GPU@69.125C tj@77.281C SOC1@68.968C CV2@67.25C "
    "VDD_GPU_SOC 3150mW/2971mW VDD_CPU_CV 14312mW/12415mW VIN_SYS_5V0 4968mW/5048mW "
    "VDDQ_VDD2_1V8AO 1091mW/1091mW"
)
JP6_AGX_ORIN = (
    "05-09-2026 18:42:07 RAM 18202/62841MB (lfb 466x4MB) SWAP 86/31420MB (cached 0MB) "
    "CPU [16%@1949,6%@1761,4%@1222,4%@2201,4%@1036,33%@1036,0%@1036,40%@1036,3%@1190,46%@1190,"
    "6%@1190,2%@1190] EMC_FREQ 3%@2133 GR3D_FREQ 0%@[0,0] NVENC 78%@166 NVDEC off NVJPG off "
    "NVJPG1 off VIC 32%@115 OFA off NVDLA0 off NVDLA1 off PVA0_FREQ off APE 174 cpu@52.343C "
    "soc2@48.343C soc0@49.062C tj@52.343C soc1@49.531C VDD_GPU_SOC 2412mW/2412mW "
    "VDD_CPU_CV 1607mW/1607mW VIN_SYS_5V0 4607mW/4657mW"
)
JP6_ORIN_NANO = (
    "05-15-2025 18:30:28 RAM 6982/7620MB (lfb 5x1MB) SWAP 2640/16384MB (cached 202MB) "
    "CPU [97%@1984,95%@1984,95%@1984,91%@1984,88%@1984,93%@247] EMC_FREQ 18%@3199 "
    "GR3D_FREQ 84%@[713] NVENC 1%@115 NVDEC 40%@115 NVJPG off NVJPG1 off VIC 31%@115 OFA off "
    "NVDLA0 off PVA0_FREQ off APE 174 cv0@63.031C cpu@65.562C soc2@64.156C soc0@63.031C "
    "cv1@62.937C gpu@63.5C tj@65.562C soc1@64.718C cv2@60.875C VDD_IN 17946mW/15710mW "
    "VDD_CPU_GPU_CV 8896mW/7585mW VDD_SOC 3923mW/3515mW"
)


def test_jetpack4_rails_without_units_and_input_rail():
    s = parse_tegrastats_line(JP4_TX2)
    assert s.timestamp is None
    assert (s.ram_used_mb, s.ram_total_mb) == (3276, 7859)
    assert s.cpu_load_percent == [44, 49, 67, 17, 25, 8]
    assert s.cpu_freq_mhz == [1421, 2031, 2034, 1420, 1419, 1420]
    assert s.gpu_load_percent == 0 and s.gpu_freq_mhz == [114]
    assert s.emc_load_percent == 1
    assert s.temperatures_c["GPU"] == 39.5 and s.temperatures_c["Tdiode"] == 39.25
    assert s.rails_mw == {
        "VDD_SYS_GPU": (182, 182),
        "VDD_SYS_SOC": (730, 730),
        "VDD_4V0_WIFI": (0, 0),
        "VDD_IN": (5297, 5297),
        "VDD_SYS_CPU": (1917, 1917),
        "VDD_SYS_DDR": (1241, 1241),
    }
    # The input rail is the total: its sub-rails are not added to it.
    assert s.total_power() == ("VDD_IN", 5297)


def test_jetpack5_agx_orin_has_no_input_rail_so_rails_are_summed():
    s = parse_tegrastats_line(JP5_AGX_ORIN)
    assert s.timestamp == "11-21-2025 08:49:48"
    assert (s.ram_used_mb, s.ram_total_mb) == (13983, 62780)  # SWAP/lfb/cached are not RAM
    assert len(s.cpu_load_percent) == 12 and s.cpu_load_percent[0] == 90
    assert s.gpu_load_percent == 14 and s.gpu_freq_mhz == [407, 407]
    assert s.temperatures_c["tj"] == 77.281 and s.temperatures_c["CV0"] == 73.625
    assert s.rails_mw == {
        "VDD_GPU_SOC": (3150, 2971),
        "VDD_CPU_CV": (14312, 12415),
        "VIN_SYS_5V0": (4968, 5048),
        "VDDQ_VDD2_1V8AO": (1091, 1091),
    }
    assert s.total_power() == (
        "VDD_GPU_SOC+VDD_CPU_CV+VIN_SYS_5V0+VDDQ_VDD2_1V8AO",
        3150 + 14312 + 4968 + 1091,
    )


def test_jetpack6_agx_orin_lower_case_zones_and_engines():
    s = parse_tegrastats_line(JP6_AGX_ORIN)
    assert s.cpu_freq_mhz[:4] == [1949, 1761, 1222, 2201]
    assert s.gpu_load_percent == 0 and s.gpu_freq_mhz == [0, 0]
    assert s.emc_load_percent == 3
    assert s.temperatures_c == {"cpu": 52.343, "soc2": 48.343, "soc0": 49.062, "tj": 52.343, "soc1": 49.531}
    # NVENC 78%@166 etc. are engines, not rails; only NAME current/average pairs are rails.
    assert s.rails_mw == {
        "VDD_GPU_SOC": (2412, 2412),
        "VDD_CPU_CV": (1607, 1607),
        "VIN_SYS_5V0": (4607, 4657),
    }


def test_jetpack6_orin_nano_input_rail():
    s = parse_tegrastats_line(JP6_ORIN_NANO)
    assert s.gpu_load_percent == 84 and s.gpu_freq_mhz == [713]
    assert s.cpu_load_percent[-1] == 93 and s.cpu_freq_mhz[-1] == 247
    assert s.total_power() == ("VDD_IN", 17946)  # current, not tegrastats' running average


def test_offline_cores_sentinel_temperatures_and_clockless_gpu():
    # r36 prints `GR3D_FREQ 0%` without clocks when the GPU is idle, `off` for parked cores, and
    # r35 prints -256C for a powered-down thermal zone.
    line = (
        "RAM 1313/30697MB (lfb 37x4MB) SWAP 0/15348MB (cached 0MB) CPU [0%@729,0%@729,off,off] "
        "GR3D_FREQ 0% CV0@-256C cpu@43.343C VDD_GPU_SOC 1995mW/1995mW VDD_CPU_CV -398mW/-398mW"
    )
    s = parse_tegrastats_line(line)
    assert s.cpu_load_percent == [0, 0, None, None] and s.cpu_freq_mhz == [729, 729, None, None]
    assert s.gpu_load_percent == 0 and s.gpu_freq_mhz == []
    assert s.temperatures_c == {"cpu": 43.343}
    assert s.rails_mw["VDD_CPU_CV"] == (-398, -398)  # the INA3221 offset can read negative at idle


@pytest.mark.parametrize("line", ["", "tegrastats: permission denied", "CPU [1%@102]"])
def test_non_sample_lines_are_refused(line):
    with pytest.raises(ValueError):
        parse_tegrastats_line(line)


def test_summary_averages_instantaneous_values():
    samples = [
        parse_tegrastats_line(JP6_ORIN_NANO),
        parse_tegrastats_line(JP6_ORIN_NANO.replace("17946mW", "15946mW")),
    ]
    summary = summarize_samples(samples, interval_ms=100)
    assert summary["samples"] == 2 and summary["interval_ms"] == 100
    assert summary["total_rail"] == "VDD_IN"
    assert summary["total_mw_mean"] == pytest.approx(16946)
    assert summary["total_mw_max"] == 17946
    assert summary["vdd_in_mw_mean"] == pytest.approx(16946)
    assert summary["rails_mw_mean"]["VDD_SOC"] == pytest.approx(3923)
    assert summary["gpu_load_percent_mean"] == pytest.approx(84)
    assert summary["cpu_load_percent_mean"] == pytest.approx((97 + 95 + 95 + 91 + 88 + 93) / 6)
    assert summary["temperature_c_max"]["tj"] == 65.562
    assert summarize_samples([]) is None


def test_summary_of_agx_orin_names_the_summed_rails():
    summary = summarize_samples([parse_tegrastats_line(JP6_AGX_ORIN)])
    assert summary["total_rail"] == "VDD_GPU_SOC+VDD_CPU_CV+VIN_SYS_5V0"
    assert summary["total_mw_mean"] == 2412 + 1607 + 4607
    assert summary["vdd_in_mw_mean"] is None


def _fake_tegrastats(tmp_path, lines):
    """An executable that behaves like tegrastats --interval MS: one line per interval, forever."""
    script = tmp_path / "tegrastats"
    script.write_text(
        f"#!{sys.executable}\n"
        + textwrap.dedent(
            f"""
            import sys, time
            assert sys.argv[1] == "--interval"
            interval = int(sys.argv[2]) / 1000
            print("banner line that is not a sample")
            lines = {lines!r}
            i = 0
            while True:
                print(lines[i % len(lines)])
                i += 1
                time.sleep(interval)
            """
        )
    )
    script.chmod(0o755)
    return str(script)


def test_sampler_collects_lines_as_they_are_printed(tmp_path):
    # print() in the fake tool buffers like C stdio: only a terminal makes it flush per line, so
    # this also checks that the sampler gives tegrastats a pseudo-terminal.
    sampler = TegrastatsSampler(
        interval_ms=20, executable=_fake_tegrastats(tmp_path, [JP4_TX2, JP6_ORIN_NANO])
    )
    with sampler:
        start = time.monotonic()
        time.sleep(0.5)
        end = time.monotonic()
        window = sampler.samples_between(start, end)
    assert 5 <= len(window) <= 40
    assert {s.total_power()[0] for s in window} == {"VDD_IN"}
    assert sampler.samples_between(end + 10, end + 20) == []


def test_sampler_without_tegrastats_starts_nothing(tmp_path):
    sampler = TegrastatsSampler(executable=None)
    sampler.executable = None  # as on a machine without tegrastats on PATH
    assert not sampler.available
    assert sampler.start() is False
    sampler.stop()
    missing = TegrastatsSampler(executable=str(tmp_path / "absent"))
    assert missing.start() is False

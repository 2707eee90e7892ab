"""placeholder"""
def run(scales, raw_scales, log):
    return []

import pytest
from mmdpal_testing import (save_tiny_teacher, write_backgrounds,
                            write_person_images)


@pytest.fixture(scope='session')
def tiny_data(tmp_path_factory):
    """A LUPerson-format folder (16 crops), backgrounds and a teacher."""
    root = tmp_path_factory.mktemp('lup')
    write_person_images(str(root / 'images'), 16)
    write_backgrounds(str(root / 'backgrounds'))
    save_tiny_teacher(str(root / 'teacher.pth'))
    return root

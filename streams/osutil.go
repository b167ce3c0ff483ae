package streams

import (
	"errors"
	"io/fs"
	"os"
)

func oserrorIsNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || os.IsNotExist(err)
}

/*
 * Firmware example: classify held-out 8x8 digits on a Cortex-M4 with an exported edge_evo model.
 * Pixels arrive as uint8 (as from a sensor) and are converted on the device with ee_pixel_q7,
 * exactly as edge_evo.fixedpoint.quantize_input_u8 does on the PC. Prints one prediction per image.
 */
#include "digits_net.h"
#include "test_images.h"
#include "ee_port.h"

static ee_tx_t tx;
static int8_t x[DIGITS_NET_N_INPUTS];
static int32_t logits[DIGITS_NET_N_OUTPUTS];

int main(void)
{
    unsigned n, j, correct = 0;
    ee_tx_str(&tx, "model ");
    ee_tx_str(&tx, DIGITS_NET_HASH);
    ee_tx_endl(&tx);
    ee_tx_str(&tx, "pred");
    for (n = 0; n < N_TEST_IMAGES; ++n) {
        int k;
        for (j = 0; j < DIGITS_NET_N_INPUTS; ++j) {
            x[j] = ee_pixel_q7(test_images[n][j]);
        }
        k = digits_net_predict(x, logits);
        correct += (k == (int)test_labels[n]);
        ee_tx_sp_i32(&tx, k);
    }
    ee_tx_endl(&tx);
    ee_tx_str(&tx, "correct");
    ee_tx_sp_u32(&tx, correct);
    ee_tx_sp_u32(&tx, N_TEST_IMAGES);
    ee_tx_endl(&tx);
    return 0;
}
